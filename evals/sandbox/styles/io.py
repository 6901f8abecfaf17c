"""PERsD input/output tests: the child returns each call's output text; the parent compares it
with the expected text it kept (PERsD's float / literal / string rule)."""

from __future__ import annotations

from evals.sandbox import compare
from evals.sandbox.styles.base import cases_of_kind


def payload(spec) -> dict:
    cases = cases_of_kind(spec, "io")
    return {"cases": [{"call": c.call} for c in cases]}


def judge_case(spec, index: int, event: dict) -> tuple[bool, dict | None]:
    case = spec.cases[index]
    output = event.get("output", "")
    if case.expected is None or compare.persd_equal(output, case.expected):
        return True, None
    return False, {"input": compare.persd_input(case.call or ""), "output": output, "expected": case.expected}


COLLECTS_OUTPUTS = True


def output(event: dict):
    return event.get("output")
