"""EvalPlus (HumanEval+/MBPP+): the child returns each encoded return value; the parent decodes it
and compares it with the expected value it kept (exact, or close within ``atol``)."""

from __future__ import annotations

import json

from evals.sandbox import compare
from evals.sandbox.inside import encode
from evals.sandbox.styles.base import cases_of_kind


def payload(spec) -> dict:
    if not spec.entry_point:
        raise ValueError("evalplus tests need an entry_point")
    cases = cases_of_kind(spec, "input")
    return {"entry_point": spec.entry_point, "cases": [{"inputs": c.inputs} for c in cases]}


def _args_text(inputs: str) -> str:
    try:
        args = json.loads(inputs)
    except ValueError:
        return inputs
    if not isinstance(args, list):
        return inputs
    return "(" + ", ".join(repr(encode.decode(a)) for a in args) + ")"


def judge_case(spec, index: int, event: dict) -> tuple[bool, dict | None]:
    case = spec.cases[index]
    if case.expected is None:
        return True, None
    actual = encode.decode(event.get("value"))
    expected = encode.decode(json.loads(case.expected))
    if compare.evalplus_equal(actual, expected, spec.atol):
        return True, None
    return False, {"input": _args_text(case.inputs or "[]"), "output": repr(actual), "expected": repr(expected)}


COLLECTS_OUTPUTS = True


def output(event: dict):
    return event.get("value")
