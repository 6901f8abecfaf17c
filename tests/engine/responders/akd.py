"""Scripted answers to AKD's completion-style prompts (``akd_teacher`` with ``prompt_format:
completion``): the prompt opens a code fence, so the answer is the task's code alone, ending where the
teacher would write the closing fence. Chat-form AKD prompts get the generic fenced answer."""

from __future__ import annotations

from typing import Any

MARKERS = ("# Requirements: write a complete", "### Response:\n```python\n")


def respond(body: dict[str, Any], tasks: list[dict[str, Any]]) -> str | None:
    prompt = body.get("prompt")
    if not prompt or not any(m in prompt for m in MARKERS):
        return None
    task = next((t for t in tasks if t["instruction"].strip() in prompt), None)
    return task["reference_solution"].rstrip() + "\n" if task else None
