"""MBPP: the setup code (``test_imports`` and any set-up statements), then each assert in turn.
No preamble beyond the setup. A failing ``assert f(x) == y`` reports what ``f(x)`` returned."""

from __future__ import annotations

from ..harness import Context
from .common import exec_test_source, fail_error, finish, run_assert_case, wrap_program_functions


def run(ctx: Context) -> None:
    program = ctx.load_program()
    if program is None:
        return
    names = ctx.test_namespace(program)
    setup = ctx.payload.get("setup") or ""
    if setup.strip():
        try:
            exec_test_source(ctx, setup, names, program, "<setup>")
        except BaseException as exc:            # noqa: BLE001
            fail_error(ctx, 0, exc)
            return
    wrap_program_functions(names, program)
    for index, case in enumerate(ctx.payload["cases"]):
        if not run_assert_case(ctx, index, case["code"], names):
            return
    finish(ctx, names)
