"""HumanEval: ``check(candidate)`` called with the entry point, after any extra assert cases
(for instance the docstring examples). No preamble: the program carries its own imports."""

from __future__ import annotations

from .. import guard
from ..harness import Context
from .common import exec_test_source, fail_assertion, fail_error, finish, run_assert_case, wrap_program_functions


def run(ctx: Context) -> None:
    program = ctx.load_program()
    if program is None:
        return
    entry = ctx.payload["entry_point"]
    names = ctx.test_namespace(program)
    if not callable(program.get(entry)):
        ctx.reporter.emit({"ev": "error", "where": "program", "i": 0, "type": "NameError",
                           "msg": f"name '{entry}' is not defined"})
        return
    wrap_program_functions(names, program)
    candidate = guard.guarded(program[entry])
    names["candidate"] = names[entry] = candidate
    cases = ctx.payload["cases"]
    for index, case in enumerate(cases):
        if not run_assert_case(ctx, index, case["code"], names):
            return
    if ctx.payload.get("check") and not _run_check(ctx, len(cases), names, program, candidate):
        return
    finish(ctx, names)


def _run_check(ctx: Context, index: int, names: dict, program: dict, candidate) -> bool:
    """Define the test code (sharing its imports with the program), then call check(candidate)."""
    ctx.recorder.failed_assert = None
    try:
        exec_test_source(ctx, ctx.payload["check"], names, program, "<check>")
        check = names.get("check")
        if not callable(check):
            raise NameError("the test code defines no check(candidate)")
        check(candidate)
    except AssertionError as exc:
        fail_assertion(ctx, index, exc)
        return False
    except BaseException as exc:                # noqa: BLE001
        fail_error(ctx, index, exc)
        return False
    ctx.reporter.emit({"ev": "case", "i": index, "ok": True})
    return True
