"""Fixtures for compile-level tests: the starter tasks, a loopback teacher that knows their reference
solutions, recipes written on the fly, and an in-process CLI runner."""

from __future__ import annotations

import hashlib
import io
import json
import textwrap
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest

from compiler.cli import main
from tests.loopback import LoopbackServer

ROOT = Path(__file__).resolve().parents[2]
STARTER = ROOT / "data" / "starter_tasks.jsonl"


def starter_tasks(limit: int | None = None) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in STARTER.read_text().splitlines() if line.strip()]
    return rows[:limit] if limit else rows


def reference_answerer(tasks: list[dict[str, Any]]) -> Callable[[dict[str, Any]], str]:
    """A teacher that answers each task with its reference solution in a fence (prose around it)."""
    refs = {t["instruction"]: t["reference_solution"] for t in tasks}

    def answer(body: dict[str, Any]) -> str:
        user = [m["content"] for m in body.get("messages", []) if m["role"] == "user"]
        text = user[-1] if user else body.get("prompt", "")
        for instruction, ref in refs.items():
            if text.startswith(instruction):
                return f"Here is a solution.\n\n```python\n{ref}```\n\nIt handles the edge cases."
        return "I cannot solve this."
    return answer


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def run_cli(*argv: str) -> CliResult:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main([str(a) for a in argv])
    return CliResult(code, out.getvalue(), err.getvalue())


def file_digest(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


@pytest.fixture(scope="session")
def teacher_server():
    with LoopbackServer(answer=reference_answerer(starter_tasks())) as server:
        yield server


@pytest.fixture(autouse=True)
def _api_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")


STAND = """\
name: {name}
sources:
  - kind: jsonl
    path: {tasks}
    limit: {limit}
teacher:
  backend: openai
  model: gpt-4o-mini
  base_url: {url}
stages:
  - uses: teacher_answer
    with:
      n: {n}
      temperature: {temperature}
  - uses: extract_code
  - uses: execute
  - uses: filter
    with:
      max_per_task: {max_per_task}
  - uses: format
"""


@pytest.fixture
def make_recipe(tmp_path, teacher_server):
    def make(name: str = "stand-test", *, limit: int = 8, n: int = 2, temperature: float = 0.5,
             max_per_task: int = 2, text: str | None = None) -> Path:
        body = text if text is not None else STAND.format(
            name=name, tasks=STARTER, limit=limit, url=teacher_server.url, n=n,
            temperature=temperature, max_per_task=max_per_task)
        path = tmp_path / f"{name}.yaml"
        path.write_text(textwrap.dedent(body))
        return path
    return make


@pytest.fixture
def store(tmp_path) -> Path:
    return tmp_path / "store.duckdb"
