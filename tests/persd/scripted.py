"""Scripted models for the PERsD tests, served by loopback OpenAI-compatible servers.

- :class:`ScriptedStudent` answers PERsD's completion prompts with a function body: the reference
  body for most tasks, a wrong one for the tasks in its ``fail`` map (so which attempts fail is
  known in advance).
- :class:`ScriptedTeacher` answers the refinement chat with the reference solution (marked by a
  ``# rectified`` comment, so refinements and gold differ) after a ``RECTIFIED CODE`` marker (with
  a FEEDBACK paragraph first when the chat asks for one), except for the tasks it is told to get
  wrong (a wrong function) or to answer without code (prose only); it answers test-input requests
  with calls taken from a script, and direct task requests (``teacher_answer``'s, the gold of
  ``gold: teacher``) with the reference marked ``# teacher gold``.

Both record what they were asked, so tests can check which tasks cost a call.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compiler.codeparse import split_function

ROOT = Path(__file__).resolve().parents[2]
STARTER = ROOT / "data" / "starter_tasks.jsonl"
_TASK_IN_PROMPT = re.compile(r'"""\n(.*?)\n"""', re.S)
_TASK_IN_TURN1 = re.compile(r"TASK:\n(.*?)\n\nHEADER:", re.S)


def starter_tasks(limit: int | None = None) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in STARTER.read_text().splitlines() if line.strip()]
    return rows[:limit] if limit else rows


def marked(code: str, comment: str | None) -> str:
    """``code`` with ``comment`` as the first line of its first function's body (None: a wrong body)."""
    header = code[: code.index(":\n") + 2]
    rest = code[len(header):]
    return header + ("    return 'still wrong'\n" if comment is None else f"{comment}\n{rest}")


def reference_body(task: dict[str, Any]) -> str:
    parts = split_function(task["reference_solution"], task["entry_point"])
    assert parts is not None, task["task_id"]
    return parts.body


# Wrong bodies of different kinds: a wrong value, an exception, None, a syntax error.
WRONG_BODIES = {
    "value": "    return 12345\n",
    "raises": "    raise ValueError('not today')\n",
    "none": "    pass\n",
    "syntax": "    return (\n",
}


@dataclass
class ScriptedStudent:
    """``fail``: task_id → the kind of wrong body (a key of ``WRONG_BODIES``); ``checkpoints``:
    model name → its own ``fail`` map (a later round's student)."""

    tasks: list[dict[str, Any]]
    fail: dict[str, str] = field(default_factory=dict)
    checkpoints: dict[str, dict[str, str]] = field(default_factory=dict)
    asked: list[tuple[str, str]] = field(default_factory=list)   # (model, task_id)

    def __call__(self, body: dict[str, Any]) -> str:
        prompt = body.get("prompt") or body["messages"][-1]["content"]
        task = self._task(prompt)
        self.asked.append((body.get("model", ""), task["task_id"]))
        fail = self.checkpoints.get(body.get("model", ""), self.fail)
        if task["task_id"] in fail:
            return WRONG_BODIES[fail[task["task_id"]]]
        return reference_body(task) + "\n\nprint('a demo line the clean-up must cut')\n"

    def _task(self, prompt: str) -> dict[str, Any]:
        found = _TASK_IN_PROMPT.search(prompt)
        text = found.group(1).strip() if found else ""
        return next(t for t in self.tasks if t["instruction"].strip() == text)


@dataclass
class ScriptedTeacher:
    """``wrong``: tasks refined into a wrong function; ``prose``: tasks answered without code;
    ``inputs``: entry point → the reply to a test-input request."""

    tasks: list[dict[str, Any]]
    wrong: set[str] = field(default_factory=set)
    prose: set[str] = field(default_factory=set)
    inputs: dict[str, str] = field(default_factory=dict)
    refined: list[str] = field(default_factory=list)
    golds: list[str] = field(default_factory=list)

    def __call__(self, body: dict[str, Any]) -> str:
        messages = body["messages"]
        if "EXAMPLE INPUTS:" in messages[-1]["content"]:
            return self._inputs(messages[-1]["content"])
        found = _TASK_IN_TURN1.search(messages[0]["content"])
        if found is None:       # a direct request: the task's instruction is the user message
            task = next(t for t in self.tasks if messages[-1]["content"].startswith(t["instruction"].strip()))
            self.golds.append(task["task_id"])
            return f"```python\n{marked(task['reference_solution'], '    # teacher gold')}\n```"
        task = next(t for t in self.tasks if t["instruction"].strip() == found.group(1).strip())
        self.refined.append(task["task_id"])
        return self._refinement(task, nl="FEEDBACK" in messages[-1]["content"])

    def _refinement(self, task: dict[str, Any], nl: bool = False) -> str:
        tid = task["task_id"]
        if tid in self.prose:
            return "The code looks almost right; check the loop bounds."
        code = task["reference_solution"]
        code = marked(code, None) if tid in self.wrong else marked(code, "    # rectified")
        if nl:
            return (f"The function mishandles the case in the error ({tid}).\n\nStep 2: RECTIFIED CODE:\n"
                    f"```python\n{code.rstrip()}\n```\nDone.")
        return f"Here is the fix.\n\nRECTIFIED CODE:\n```python\n{code.rstrip()}\n```\nDone."

    def _inputs(self, text: str) -> str:
        entry = next((e for e in self.inputs if f"{e}(arg_1" in text), None)
        return self.inputs.get(entry, "") if entry else ""
