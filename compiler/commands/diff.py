"""distillc diff: rows added, removed and changed between two corpus versions."""

from __future__ import annotations

import argparse
import json

from compiler.commands.common import add_json, add_store, print_json, store_path

SIGN = {"added": "+", "removed": "-", "changed": "~"}
NAME = "diff"
HELP = "compare two corpus versions row by row (added, removed, changed)"
EXAMPLE = "distillc diff quickstart@1 quickstart   # version 1 against the latest"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("old", metavar="CORPUS@V1")
    p.add_argument("new", metavar="CORPUS@V2")
    add_store(p)
    add_json(p)
    p.add_argument("--limit", type=int, default=10, help="row ids listed per kind (default 10)")


def _contents(frame) -> dict[str, str]:
    cols = [c for c in frame.columns if c not in ("row_id", "parent_ids")]
    return {r["row_id"]: json.dumps({c: r[c] for c in cols}, sort_keys=True, default=str)
            for r in frame.iter_rows(named=True)}


def compare(store, a, b, limit: int = 10) -> dict:
    """Counts of rows added, removed, changed and unchanged from version ``a`` to ``b``, and the first
    ``limit`` row ids of each kind."""
    from compiler.store.outputs import load_output

    old, new = _contents(load_output(store, a.fingerprint)), _contents(load_output(store, b.fingerprint))
    added = sorted(set(new) - set(old))
    removed = sorted(set(old) - set(new))
    changed = sorted(k for k in set(old) & set(new) if old[k] != new[k])
    return {"old": a.ref, "new": b.ref, "added": len(added), "removed": len(removed), "changed": len(changed),
            "unchanged": len(set(old) & set(new)) - len(changed),
            "examples": {"added": added[:limit], "removed": removed[:limit], "changed": changed[:limit]}}


def run(args: argparse.Namespace) -> int:
    from compiler.store.db import Store
    from compiler.store.versions import resolve

    with Store.open_readonly(store_path(args)) as store:
        a, b = resolve(store, args.old), resolve(store, args.new)
        out = compare(store, a, b, args.limit)
    if args.json:
        print_json(out)
        return 0
    print(f"{a.ref} -> {b.ref}: {out['added']} added, {out['removed']} removed, {out['changed']} changed, "
          f"{out['unchanged']} unchanged")
    for kind in ("added", "removed", "changed"):
        for rid in out["examples"][kind]:
            print(f"  {SIGN[kind]} {rid}")
    return 0
