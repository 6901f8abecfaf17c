"""EvalPlus (HumanEval+ / MBPP+): the entry point is called on each input (a JSON list of
positional arguments, deep-copied first) and its return value is sent back encoded; the parent
compares it with the expected value, with ``atol`` for floats. No preamble."""

from __future__ import annotations

import copy
import json

from .. import encode
from ..harness import Context


def run(ctx: Context) -> None:
    program = ctx.load_program()
    if program is None:
        return
    entry = program.get(ctx.payload["entry_point"])
    if not callable(entry):
        ctx.reporter.emit({"ev": "error", "where": "program", "i": 0, "type": "NameError",
                           "msg": f"name '{ctx.payload['entry_point']}' is not defined"})
        return
    for index, case in enumerate(ctx.payload["cases"]):
        try:
            args = encode.decode(json.loads(case["inputs"]))
            value = entry(*copy.deepcopy(args))
            encoded = encode.encode(value)
        except BaseException as exc:            # noqa: BLE001
            ctx.reporter.error(exc, "test", index)
            return
        ctx.reporter.emit({"ev": "case", "i": index, "value": encoded})
    ctx.reporter.done()
