"""AKD's prompts (METHODS §4(b)): the task-explicit ("enhanced") teacher prompt, the plain prompt the
student sees, and prompt files of one's own.

Every prompt is a template with ``{placeholder}`` fields taken from the task:

- ``{instruction}``: the whole instruction (Code Alpaca's ``input`` on the line after it);
- ``{task}``: the instruction without that input, and ``{input}``: the input alone (empty if none);
- ``{header}`` / ``{entry_point}``: the required function's ``def`` line and name, when known.

A template line whose placeholders are all empty is left out, so ``# Input: {input}`` disappears
for a task without input. Two shapes: ``completion`` prompts are raw text that a base model
continues (they end by opening a ```` ```python ```` fence, and the teacher stops at the closing
one), ``chat`` prompts are one user message for an instruct model.
"""

from __future__ import annotations

import json
import string
from typing import Any, Literal

PromptFormat = Literal["completion", "chat"]
FIELDS = ("instruction", "task", "input", "header", "entry_point")

_REQUIREMENTS = ("write a complete, self-contained Python function (or program) that solves the task. "
                 "Include all needed imports, give the function a descriptive name, handle edge cases, "
                 "and do not print explanations or example usage.")

ENHANCED_COMPLETION = (
    "# Task: {task}\n"
    "# Input: {input}\n"
    "# Requirements: write a complete, self-contained Python function (or program) that solves the task.\n"
    "# Include all needed imports, give the function a descriptive name, handle edge cases,\n"
    "# and do not print explanations or example usage.\n"
    "```python\n"
)
PLAIN_COMPLETION = (
    "Below is an instruction that describes a task. Write a response that appropriately completes the "
    "request.\n\n"
    "### Instruction:\n{instruction}\n\n"
    "### Response:\n```python\n"
)
ENHANCED_CHAT = (
    "Task: {task}\n"
    "Input: {input}\n"
    f"Requirements: {_REQUIREMENTS} Reply with the code in a single ```python block.\n"
)
PLAIN_CHAT = "{instruction}"

BUILT_IN: dict[tuple[str, str], str] = {
    ("enhanced", "completion"): ENHANCED_COMPLETION, ("plain", "completion"): PLAIN_COMPLETION,
    ("enhanced", "chat"): ENHANCED_CHAT, ("plain", "chat"): PLAIN_CHAT,
}


def is_file(choice: str) -> bool:
    """Whether a ``prompt`` param names a template file rather than a built-in prompt."""
    return choice not in ("enhanced", "plain")


def built_in(choice: str, fmt: PromptFormat) -> str:
    return BUILT_IN[(choice, fmt)]


def check_template(template: str, where: str) -> None:
    """ValueError (one line) when the template is malformed or uses a field tasks do not have."""
    try:
        names = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as exc:
        raise ValueError(f"{where}: not a valid template ({exc})") from None
    unknown = sorted(n for n in names if n not in FIELDS)
    if unknown:
        raise ValueError(f"{where}: unknown placeholder {{{unknown[0]}}} (fields: {', '.join(FIELDS)})")


def task_fields(row: dict[str, Any]) -> dict[str, str]:
    """The template fields of a task row."""
    instruction = (row.get("instruction") or "").strip()
    extra = _meta(row).get("input") or ""
    task = instruction
    if extra.strip() and instruction.endswith(extra.strip()):
        task = instruction[: -len(extra.strip())].rstrip()
    return {"instruction": instruction, "task": task, "input": extra.strip(),
            "header": (row.get("header") or "").strip(), "entry_point": row.get("entry_point") or ""}


def _meta(row: dict[str, Any]) -> dict[str, Any]:
    meta = row.get("meta")
    if isinstance(meta, str):
        try:
            meta = json.loads(meta)
        except ValueError:
            return {}
    return meta if isinstance(meta, dict) else {}


def render(template: str, fields: dict[str, str]) -> str:
    """Fill the template; lines whose placeholders are all empty are left out."""
    out = []
    for line in template.splitlines(keepends=True):
        names = [f for _, f, _, _ in string.Formatter().parse(line) if f is not None]
        if names and not any(fields.get(n) for n in names):
            continue
        out.append(line.format(**fields))
    return "".join(out)
