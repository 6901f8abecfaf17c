"""Fixtures for the PERsD tests: a scripted student and a scripted teacher, each behind its own
loopback OpenAI-compatible server, and PERsD recipes written on the fly."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from tests.loopback import LoopbackServer
from tests.persd.scripted import STARTER as STARTER_PATH
from tests.persd.scripted import ScriptedStudent, ScriptedTeacher, starter_tasks

GOLDEN = Path(__file__).resolve().parent / "golden"
SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
RELEASED = SHARED_DATA / "persd-released"

# The first ten starter tasks; the student fails four of them, in four different ways. The teacher
# fixes two, refines one into a wrong function and answers one without code.
LIMIT = 10
STUDENT_FAILS = {
    "starter/02-is_even": "value",
    "starter/05-count_vowels": "raises",
    "starter/07-to_fahrenheit": "none",
    "starter/09-clean_palindrome": "syntax",
}
TEACHER_WRONG = {"starter/07-to_fahrenheit"}
TEACHER_PROSE = {"starter/09-clean_palindrome"}
FIXED = {"starter/02-is_even", "starter/05-count_vowels"}

PERSD_STAGES: list[dict[str, Any]] = [
    {"uses": "synthesize_tests"},
    {"uses": "student_attempt"},
    {"uses": "execute", "name": "execute_attempt", "with": {"code": "attempt_code", "prefix": "attempt"}},
    {"uses": "teacher_refine"},
    {"uses": "parse_refinement"},
    {"uses": "execute", "name": "execute_refinement", "with": {"code": "refine_code", "prefix": "refine"}},
    {"uses": "keep_refinements"},
    {"uses": "emit_persd"},
]


@pytest.fixture
def update_golden() -> bool:
    """Golden files are rewritten from the current output when ``DISTILLC_UPDATE_GOLDEN=1``."""
    return os.environ.get("DISTILLC_UPDATE_GOLDEN", "") not in ("", "0")


@pytest.fixture(autouse=True)
def _api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    monkeypatch.setenv("DISTILLC_PROGRESS", "0")


@pytest.fixture(scope="module")
def tasks() -> list[dict[str, Any]]:
    return starter_tasks(LIMIT)


@pytest.fixture(scope="module")
def student(tasks: list[dict[str, Any]]):
    script = ScriptedStudent(tasks, dict(STUDENT_FAILS))
    with LoopbackServer(answer=script) as server:
        server.script = script
        yield server


@pytest.fixture(scope="module")
def teacher(tasks: list[dict[str, Any]]):
    script = ScriptedTeacher(tasks, wrong=set(TEACHER_WRONG), prose=set(TEACHER_PROSE))
    with LoopbackServer(answer=script) as server:
        server.script = script
        yield server


def models(student_url: str, teacher_url: str) -> dict[str, Any]:
    return {
        "teacher": {"backend": "openai", "model": "gpt-4o-mini", "base_url": teacher_url},
        "student": {"backend": "openai", "model": "scripted-student", "base_url": student_url,
                    "prices": {"input": 0.5, "output": 1.5}},
    }


@pytest.fixture
def persd_recipe(tmp_path: Path, student, teacher) -> Callable[..., Path]:
    """``persd_recipe(stages=..., tasks=..., **top)`` writes a PERsD recipe and returns its path."""
    def make(stages: list[dict[str, Any]] | None = None, *, tasks: Path | None = None, limit: int = LIMIT,
             name: str = "persd-test", **top: Any) -> Path:
        source = {"kind": "jsonl", "path": str(tasks or STARTER_PATH), "limit": limit, "name": "starter"}
        recipe = {"name": name, "sources": [source], **models(student.url, teacher.url),
                  "stages": stages if stages is not None else PERSD_STAGES}
        recipe.update(top)
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")
        return path
    return make


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "store.duckdb"


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path

