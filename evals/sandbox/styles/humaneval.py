"""HumanEval: extra assert cases (e.g. docstring examples), then ``check(candidate)``."""

from __future__ import annotations

from evals.sandbox.styles import asserts
from evals.sandbox.styles.base import cases_of_kind


def payload(spec) -> dict:
    if not spec.entry_point:
        raise ValueError("humaneval tests need an entry_point")
    cases = cases_of_kind(spec, "assert")
    return {"entry_point": spec.entry_point, "check": spec.check, "cases": [{"code": c.code} for c in cases]}


judge_case = asserts.judge_case


COLLECTS_OUTPUTS = False
