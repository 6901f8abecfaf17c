"""Fixtures for the data tests: the offline benchmark files beside the project, task files written
on the fly, and real stage contexts (a recipe on disk, its plan and a DuckDB store)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import polars as pl
import pytest
import yaml

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
SANITIZED_MBPP = SHARED_DATA / "sanitized-mbpp.json"
MBPP_PLUS = SHARED_DATA / "MbppPlus.jsonl.gz"
STARTER = Path(__file__).resolve().parents[2] / "data" / "starter_tasks.jsonl"


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def run_stage(tmp_path: Path) -> Callable[..., Any]:
    """``run_stage(uses, frame, **params)`` runs one registered stage through a real
    :class:`StageContext` (recipe file in ``tmp_path``, planned, with a DuckDB store)."""
    from compiler.plan import make_plan
    from compiler.recipe.loader import load_recipe
    from compiler.runner import Services, StageContext
    from compiler.store.db import Store

    opened: list[Any] = []

    def run(uses: str, frame: pl.DataFrame, **params: Any):
        tasks = write_jsonl(tmp_path / "one.jsonl", [{"task_id": "t", "instruction": "x"}])
        recipe = {"name": "t", "sources": [{"kind": "jsonl", "path": tasks.name}],
                  "stages": [{"uses": uses, "with": params}]}
        path = tmp_path / "recipe.yaml"
        path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
        loaded = load_recipe(path)
        plan = make_plan(loaded)
        store = Store.open(str(tmp_path / "store.duckdb"))
        opened.append(store)
        step = plan.steps[1]
        stage = step.cls(step.params)
        return stage.run(frame, StageContext(step, Services(loaded, store), plan.steps[0].fingerprint))

    yield run
    for store in opened:
        store.close()


def task_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """A task frame (TASK_SCHEMA, plus any extra columns given) from partial rows."""
    from compiler.stages.base import TASK_SCHEMA

    full = []
    for i, row in enumerate(rows):
        base = {c: None for c in TASK_SCHEMA}
        base.update(row_id=f"r{i}", parent_ids=[], task_id=f"t{i}", tests='{"style": "run"}',
                    source="test", language="python", meta="{}")
        full.append({**base, **row})
    extra = {k: pl.String for r in rows for k in r if k not in TASK_SCHEMA}
    return pl.DataFrame(full, schema={**TASK_SCHEMA, **extra})
