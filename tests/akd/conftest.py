"""Fixtures for the AKD tests: a scripted teacher behind the loopback server, and AKD recipes over the
starter tasks plus a few Code Alpaca-shaped rows (with an ``input``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.compiler.conftest import STARTER, starter_tasks

ALPACA = [
    {"instruction": "Write a function that returns the larger of two numbers.", "input": "a = 3, b = 7",
     "output": "def larger(a, b):\n    return max(a, b)\n"},
    {"instruction": "Write a function that doubles every item of a list.", "input": "",
     "output": "def double_all(items):\n    return [2 * x for x in items]\n"},
]
BROKEN = "starter/03-max_of_three"   # the teacher answers with code that does not parse
SILENT = "starter/04-reverse_text"   # the teacher answers with nothing but prose


class ScriptedTeacher:
    """Answers an AKD prompt with the task's reference code: as raw code for a completion prompt
    (which opened the fence), in a fenced block for a chat message. One task gets broken code, one
    gets prose only. Records every request body."""

    def __init__(self) -> None:
        tasks = starter_tasks(6)
        self.refs = {t["instruction"]: (t["task_id"], t["reference_solution"]) for t in tasks}
        self.refs.update({a["instruction"]: (str(i), a["output"]) for i, a in enumerate(ALPACA)})
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, body: dict[str, Any]) -> str:
        self.bodies.append(body)
        text = body.get("prompt") or body["messages"][-1]["content"]
        task_id, code = next(v for k, v in self.refs.items() if k in text)
        if task_id == BROKEN:
            code = "def max_of_three(a, b, c:\n    return a\n"
        if task_id == SILENT:
            return "I would reverse the words." if "messages" in body else "\n"
        return code if "prompt" in body else f"Here it is.\n\n```python\n{code}```\n"


def write_sources(directory: Path) -> Path:
    path = directory / "alpaca.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ALPACA))
    return path


def akd_recipe(directory: Path, url: str, *, name: str = "akd-test", teacher_with: str = "",
               emit_with: str = "", limit: int = 6) -> Path:
    """An AKD recipe: starter tasks + two Alpaca rows, akd_teacher, akd_filter, dedup, emit_akd."""
    alpaca = write_sources(directory)
    text = f"""\
name: {name}
sources:
  - kind: jsonl
    path: {STARTER}
    limit: {limit}
  - kind: jsonl
    path: {alpaca}
    name: alpaca
teacher:
  backend: openai
  model: starcoder-7b
  base_url: {url}
stages:
  - uses: akd_teacher
    with: {{{teacher_with}}}
  - uses: akd_filter
  - uses: dedup
    with: {{columns: [teacher_code]}}
  - uses: emit_akd
    with: {{{emit_with}}}
"""
    path = directory / f"{name}.yaml"
    path.write_text(text)
    return path


@pytest.fixture
def scripted():
    return ScriptedTeacher()


@pytest.fixture(autouse=True)
def _api_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    monkeypatch.setenv("DISTILLC_PROGRESS", "0")
