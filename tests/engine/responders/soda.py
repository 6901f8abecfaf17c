"""SODA's prompts (A, B, the rubric, the error-type question, C and D) and the student's answers to the
questions SODA's scripted teacher wrote, answered by :class:`tests.soda.scripted.SodaScript`; the
student's answers to the recipe's own tasks are left to the generic scripted model."""

from __future__ import annotations

from typing import Any

from tests.soda.scripted import SodaScript


def respond(body: dict[str, Any], tasks: list[dict[str, Any]]) -> str | None:
    if "messages" not in body:
        return None
    return SodaScript(tasks).respond(body, only_own=True)
