"""The `distillc` entry point: parses arguments, dispatches to ``compiler/commands/<verb>.py`` and maps
errors to exit codes (user errors: one line on stderr and exit 1, budget: exit 3; tracebacks only
with ``--debug``).

A command module defines ``NAME``, ``HELP`` (one line), ``EXAMPLE`` (a runnable command line),
``add_arguments(parser)`` and ``run(args) -> int``. Module top levels stay cheap to import: heavy
libraries are imported inside ``run``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import NoReturn, Sequence

from compiler.errors import DistillcError, UsageError
from compiler.progress import quiet_third_party_bars

COMMANDS = (
    "compile", "plan", "ls", "show", "diff", "export", "cost",
    "exec", "doctor", "train", "eval", "report", "publish", "modules", "view",
)


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on bad usage; distillc's contract is one line and exit 1."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


def _load(name: str):
    try:
        return importlib.import_module(f"compiler.commands.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"compiler.commands.{name}":
            return None
        raise


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="distillc",
        description="Compile distillation corpora for code-generation LLMs from YAML recipes.",
        epilog="example:\n  distillc compile recipes/quickstart.yaml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        mod = _load(name)
        if mod is None:
            continue
        p = sub.add_parser(
            mod.NAME, help=mod.HELP, description=mod.HELP,
            epilog=f"example:\n  {mod.EXAMPLE}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show tracebacks on errors")
        mod.add_arguments(p)
        p.set_defaults(func=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    quiet_third_party_bars()
    try:
        args = build_parser().parse_args(argv)
        if not getattr(args, "func", None):
            build_parser().print_help(sys.stderr)
            return 1
        return int(args.func(args) or 0)
    except DistillcError as exc:
        if debug:
            raise
        print(f"distillc: error: {exc.line()}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("distillc: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # stdout closed early (`distillc ... | head`): not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
