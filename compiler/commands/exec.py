"""distillc exec: run one program in the sandbox, optionally against a test file.

The test file is detected: a JSON ``TestSpec``; Python defining ``check(candidate)`` (HumanEval
style, with ``--entry-point``); or Python with top-level asserts (MBPP style: the other top-level
statements are the set-up). Without ``--test`` the program only has to compile and run, in the
language its extension names. Exit status 0 whenever the program ran, whatever the verdict.
"""

from __future__ import annotations

import argparse
import ast
import json
from pathlib import Path

from compiler.commands.common import add_json, print_json
from compiler.errors import UsageError

NAME = "exec"
HELP = "run one program in the sandbox (optionally against tests) and report how it went"
EXAMPLE = ("printf 'def add(a, b):\\n    return a + b\\n' > add.py && printf 'assert add(2, 3) == 5\\n' > test_add.py"
           " && distillc exec add.py --test test_add.py --entry-point add --json")
ISOLATION = ("auto", "bwrap", "landlock", "rlimits")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("code_file", metavar="CODE_FILE", help="the program (language from its extension)")
    p.add_argument("--test", metavar="TEST_FILE",
                   help="asserts (MBPP style), a check(candidate) function (HumanEval style) or a JSON TestSpec")
    p.add_argument("--entry-point", metavar="NAME", help="the function check(candidate) receives")
    p.add_argument("--cpu-seconds", metavar="S", type=float, default=5.0, help="CPU-time limit (default 5)")
    p.add_argument("--memory-mb", metavar="M", type=int, default=1024, help="address-space limit (default 1024)")
    p.add_argument("--language", metavar="LANG", help="override the language guessed from the extension")
    p.add_argument("--isolation", choices=ISOLATION, default="auto", help="isolation level (default: strongest available)")
    add_json(p)


def _read(path: str, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{what} not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {what} {path}: {exc}") from None


def _language(args: argparse.Namespace) -> str:
    from evals.sandbox import toolchains

    if args.language:
        language = toolchains.normalise(args.language)
        if language not in toolchains.TOOLCHAINS:
            raise UsageError(f"unknown language {args.language!r} (one of {', '.join(toolchains.TOOLCHAINS)})")
        return language
    suffix = Path(args.code_file).suffix.lower()
    if suffix not in toolchains.EXTENSIONS:
        raise UsageError(f"cannot tell the language of {args.code_file}; pass --language")
    return toolchains.EXTENSIONS[suffix]


def _functions(code: str) -> list[str]:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    return [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def _json_spec(text: str, path: str):
    from evals.sandbox import TestSpec

    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or "style" not in data:
        raise UsageError(f"{path}: a JSON test file must be a TestSpec object with a 'style'")
    try:
        return TestSpec.from_dict(data)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{path}: not a valid TestSpec: {exc}") from None


def _entry_point(args: argparse.Namespace, code: str) -> str:
    if args.entry_point:
        return args.entry_point
    names = _functions(code)
    if len(names) == 1:
        return names[0]
    raise UsageError("the test file defines check(candidate): pass --entry-point NAME")


def _python_spec(text: str, path: str, args: argparse.Namespace, code: str):
    from evals.sandbox import TestCase, TestSpec

    try:
        tree = ast.parse(text)
    except SyntaxError as exc:
        raise UsageError(f"{path} is neither Python nor a JSON TestSpec: {exc}") from None
    if any(isinstance(n, ast.FunctionDef) and n.name == "check" for n in tree.body):
        return TestSpec(style="humaneval", entry_point=_entry_point(args, code), check=text)
    asserts = [n for n in tree.body if isinstance(n, ast.Assert)]
    if not asserts:
        raise UsageError(f"{path} has neither top-level asserts nor a check(candidate) function")
    setup = "\n".join(ast.get_source_segment(text, n) or ast.unparse(n) for n in tree.body if not isinstance(n, ast.Assert))
    cases = tuple(TestCase(kind="assert", code=ast.get_source_segment(text, n) or ast.unparse(n)) for n in asserts)
    return TestSpec(style="mbpp", setup=setup, cases=cases, entry_point=args.entry_point)


def build_spec(args: argparse.Namespace, code: str, language: str):
    """The TestSpec for the command line (a JSON spec, HumanEval, MBPP, or just run)."""
    from evals.sandbox import TestSpec

    if not args.test:
        return TestSpec(style="run", language=language)
    text = _read(args.test, "test file")
    spec = _json_spec(text, args.test) or _python_spec(text, args.test, args, code)
    if language != "python" and spec.style != "run":
        raise UsageError(f"tests run on Python programs only; {args.code_file} is {language}")
    return spec


def _limits(args: argparse.Namespace):
    from evals.sandbox import Limits

    if args.cpu_seconds <= 0 or args.memory_mb <= 0:
        raise UsageError("--cpu-seconds and --memory-mb must be positive")
    return Limits(cpu_seconds=args.cpu_seconds, memory_mb=args.memory_mb)


def _print_human(result) -> None:
    counts = f" ({result.n_passed}/{result.n_total} tests passed)" if result.n_total else ""
    print(f"status: {result.status.value}{counts}")
    print(f"isolation: {result.isolation}")
    print(f"cpu {result.cpu_s:.3f} s, wall {result.wall_s:.3f} s")
    if result.feedback:
        print("feedback:\n  " + result.feedback.replace("\n", "\n  "))
    for name in ("stdout", "stderr"):
        text = getattr(result, name)
        if text:
            print(f"--- {name} ---\n{text.rstrip()}")


def run(args: argparse.Namespace) -> int:
    from evals.sandbox import Job, SandboxUnavailable, Status, run_one

    code = _read(args.code_file, "program")
    language = _language(args)
    job = Job(code=code, tests=build_spec(args, code, language), limits=_limits(args))
    try:
        result = run_one(job, isolation=args.isolation)
    except SandboxUnavailable as exc:
        raise UsageError(f"sandbox unavailable: {exc}") from None
    if result.status is Status.SKIPPED:
        raise UsageError(f"cannot run {language} here: {result.first_failure['message']}")
    if args.json:
        print_json(result.to_dict())
    else:
        _print_human(result)
    return 0
