"""PERsD input/output tests. The program runs after PERsD's import preamble; each test is a call
expression evaluated in the program's namespace. Its output is ``str(value)``, or everything the
program printed (top level plus this call) when the value is None, exactly as PERsD computes it.
The child only reports outputs: the expected values stay with the parent, which compares them."""

from __future__ import annotations

from ..harness import PERSD_PREAMBLE, Capture, Context, clip


def _output(value, printed: str) -> str:
    return printed if value is None else str(value)


def run(ctx: Context) -> None:
    with Capture() as top:
        program = ctx.load_program(preamble=PERSD_PREAMBLE)
    if program is None:
        return
    for index, case in enumerate(ctx.payload["cases"]):
        try:
            expression = compile(case["call"].strip(), f"<test {index}>", "eval")
            with Capture() as call:
                value = eval(expression, program)
            output = _output(value, top.text + call.text)
        except BaseException as exc:            # noqa: BLE001 - any error ends the run, as in PERsD
            ctx.reporter.error(exc, "test", index)
            return
        ctx.reporter.emit({"ev": "case", "i": index, "output": clip(output, 1 << 20)})
    ctx.reporter.done()
