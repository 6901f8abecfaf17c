"""Arguments and output helpers shared by command modules."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Sequence

from compiler.llm.prices import money  # noqa: F401 - re-exported for the commands
from compiler.store.db import default_store_path


def add_store(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", metavar="PATH", default=None,
                   help="the DuckDB store (default: $DISTILLC_STORE or data/distillc.duckdb)")


def store_path(args: argparse.Namespace) -> str:
    return args.store or default_store_path()


def add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2, default=str, ensure_ascii=False)
    sys.stdout.write("\n")


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))
