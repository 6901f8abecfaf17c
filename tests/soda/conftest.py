"""Fixtures for the SODA tests: a scripted teacher, student and judge (one loopback server each, all
answering with :class:`tests.soda.scripted.SodaScript`), and SODA recipes written on the fly."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from tests.compiler.conftest import STARTER, starter_tasks
from tests.loopback import LoopbackServer
from tests.soda.scripted import SodaScript

LIMIT = 6
# The first six starter tasks: one faulty answer of each kind, one correct answer that raises.
FAULTY = {"starter/01-square": "name", "starter/02-is_even": "logic", "starter/03-max_of_three": "syntax",
          "starter/04-reverse_text": "sneaky", "starter/05-count_vowels": "same"}
CORRECT_BROKEN = {"starter/06-total"}
STUDENT_WRONG = {"starter/02-is_even"}

CYCLE: list[dict[str, Any]] = [
    {"uses": "soda_seeds"},
    {"uses": "teacher_correct"},
    {"uses": "teacher_faulty"},
    {"uses": "static_check", "name": "check_correct", "with": {"code": "correct_text", "prefix": "correct"}},
    {"uses": "static_check", "name": "check_faulty", "with": {"code": "faulty_text", "prefix": "faulty",
                                                               "cpu_seconds": 2.0}},
    {"uses": "judge", "name": "judge_correct", "with": {"code": "correct_text", "prefix": "correct"}},
    {"uses": "judge", "name": "judge_faulty", "with": {"code": "faulty_text", "prefix": "faulty"}},
    {"uses": "pair"},
    {"uses": "student_answer"},
    {"uses": "static_check", "name": "check_student", "with": {"code": "student_text", "prefix": "student"}},
    {"uses": "judge", "name": "judge_student"},
    {"uses": "pass_rate", "with": {"k": 2}},
    {"uses": "tier"},
    {"uses": "new_questions", "with": {"decontaminate": {"benchmarks": ["humaneval"]}}},
]


def stages(cycles: int = 1, *, emit: bool = True, **cycle_with: Any) -> list[dict[str, Any]]:
    out = [dict(s) for s in CYCLE]
    if cycles > 1 or cycle_with:
        out.append({"uses": "soda_cycles", "with": {"cycles": cycles, **cycle_with}})
    return out + ([{"uses": "emit_soda"}] if emit else [])


@pytest.fixture(autouse=True)
def _api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    monkeypatch.setenv("DISTILLC_PROGRESS", "0")


@pytest.fixture
def script() -> SodaScript:
    return SodaScript(starter_tasks(LIMIT), faulty=dict(FAULTY), correct_broken=set(CORRECT_BROKEN),
                      student_wrong=set(STUDENT_WRONG))


@pytest.fixture
def servers(script: SodaScript):
    with LoopbackServer(answer=script) as teacher, LoopbackServer(answer=script) as student, \
            LoopbackServer(answer=script) as judge:
        yield {"teacher": teacher, "student": student, "judge": judge}


def models(servers: dict[str, LoopbackServer]) -> dict[str, Any]:
    names = {"teacher": "gpt-4o-mini", "student": "scripted-student", "judge": "scripted-judge"}
    return {role: {"backend": "openai", "model": names[role], "base_url": s.url,
                   "prices": {"input": 1.0, "output": 2.0}} for role, s in servers.items()}


@pytest.fixture
def soda_recipe(tmp_path: Path, servers) -> Callable[..., Path]:
    """``soda_recipe(stages=..., limit=..., **top)`` writes a SODA recipe and returns its path."""
    def make(stage_list: list[dict[str, Any]] | None = None, *, limit: int = LIMIT, name: str = "soda-test",
             **top: Any) -> Path:
        source = {"kind": "jsonl", "path": str(STARTER), "limit": limit, "name": "starter"}
        recipe = {"name": name, "sources": [source], **models(servers), "stages": stage_list or stages(), **top}
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")
        return path
    return make


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "store.duckdb"
