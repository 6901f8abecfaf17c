"""Steps shared by the assert-based styles (HumanEval and MBPP)."""

from __future__ import annotations

import types

from .. import guard
from ..harness import Context


def run_assert_case(ctx: Context, index: int, source: str, names: dict) -> bool:
    """Run one assert test; report it; False (after reporting the failure) if it did not hold."""
    ctx.recorder.failed_assert = None
    try:
        ctx.run_rewritten(source, names, f"<test {index}>")
    except AssertionError as exc:
        fail_assertion(ctx, index, exc)
        return False
    except BaseException as exc:                # noqa: BLE001 - any error fails the test
        fail_error(ctx, index, exc)
        return False
    ctx.reporter.emit({"ev": "case", "i": index, "ok": True})
    return True


def fail_assertion(ctx: Context, index: int, exc: AssertionError) -> None:
    detail = ctx.assertion_detail()
    if not detail:
        detail = {"source": None}
    message = str(exc) if str(exc) else ""
    ctx.reporter.emit({"ev": "case", "i": index, "ok": False, "kind": "assert", "msg": message, **detail})


def fail_error(ctx: Context, index: int, exc: BaseException) -> None:
    if isinstance(exc, guard.UntrustedValue):
        ctx.reporter.emit({"ev": "case", "i": index, "ok": False, "kind": "untrusted", "msg": str(exc)})
        return
    ctx.reporter.error(exc, "test", index)


def wrap_program_functions(names: dict, program: dict) -> None:
    """Replace, in the test namespace, every function the program defined by a guarded one."""
    for key, value in list(names.items()):
        if isinstance(value, types.FunctionType) and value.__globals__ is program:
            names[key] = guard.guarded(value)


def share_test_names(names: dict, program: dict) -> None:
    """Make names the test code defined at top level (its imports, mostly) visible to the
    program too, as when the reference harnesses concatenate program and tests."""
    for key, value in names.items():
        if key not in program and not key.startswith("__"):
            program[key] = value


def exec_test_source(ctx: Context, source: str, names: dict, program: dict, filename: str) -> None:
    """Run test set-up or definitions (rewritten asserts included) and share their names."""
    ctx.run_rewritten(source, names, filename)
    share_test_names(names, program)


def finish(ctx: Context, names: dict) -> None:
    if not ctx.tampered(names):
        ctx.reporter.done()
