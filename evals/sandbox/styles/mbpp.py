"""MBPP: set-up code (test imports), then each assert statement."""

from __future__ import annotations

from evals.sandbox.styles import asserts
from evals.sandbox.styles.base import cases_of_kind


def payload(spec) -> dict:
    cases = cases_of_kind(spec, "assert")
    return {"setup": spec.setup, "cases": [{"code": c.code} for c in cases]}


judge_case = asserts.judge_case


COLLECTS_OUTPUTS = False
