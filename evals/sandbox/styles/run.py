"""Compiles and runs: one implicit test, passed when the program finished normally."""

from __future__ import annotations

from evals.sandbox import toolchains


def payload(spec) -> dict:
    language = toolchains.normalise(spec.language)
    return {"language": language}


def judge_case(spec, index: int, event: dict) -> tuple[bool, dict | None]:
    return bool(event.get("ok")), None


COLLECTS_OUTPUTS = False
