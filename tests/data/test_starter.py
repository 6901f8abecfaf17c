"""The starter task set: well-formed, in the project's own format, and every reference passes its
own tests."""

from __future__ import annotations

import json

import polars as pl
import pytest

from compiler.recipe.schema import SourceConfig
from compiler.stages.sources import load_source
from evals.sandbox import Job, run_many
from evals.sandbox.types import TestSpec as Spec
from tests.data.conftest import STARTER


@pytest.fixture(scope="module")
def starter() -> pl.DataFrame:
    cfg = SourceConfig(kind="jsonl", path=str(STARTER), name="starter", licence="Apache-2.0")
    return load_source(cfg, STARTER.parent)


def test_starter_set_shape(starter: pl.DataFrame):
    assert 28 <= starter.height <= 40
    assert starter["task_id"].n_unique() == starter.height
    levels = {json.loads(m)["difficulty"] for m in starter["meta"]}
    assert levels == {"easy", "medium", "hard"}
    for row in starter.iter_rows(named=True):
        tests = Spec.from_json(row["tests"])
        assert tests.style == "io" and len(tests.cases) >= 4
        assert [c.visibility for c in tests.cases] == ["seen"] + ["hidden"] * (len(tests.cases) - 1)
        assert row["header"].startswith(f"def {row['entry_point']}(")


def test_every_reference_passes_its_own_tests_in_the_sandbox(starter: pl.DataFrame):
    rows = starter.rows(named=True)
    results = run_many([Job(code=r["reference_solution"], tests=Spec.from_json(r["tests"])) for r in rows])
    assert [r["task_id"] for r, res in zip(rows, results) if not res.passed] == []


def test_a_wrong_solution_fails_the_starter_tests(starter: pl.DataFrame):
    row = starter.row(0, named=True)
    wrong = row["reference_solution"].replace("n * n", "n + n")
    assert not run_many([Job(code=wrong, tests=Spec.from_json(row["tests"]))])[0].passed
