"""The starter task set: well-formed, in the project's own format, and every reference passes its
own tests."""

from __future__ import annotations

import ast
import json
import math

import polars as pl
import pytest

from compiler.recipe.schema import SourceConfig
from compiler.stages.sources import load_source
from evals.sandbox.types import TestSpec as Spec
from tests.data.conftest import STARTER


@pytest.fixture(scope="module")
def starter() -> pl.DataFrame:
    cfg = SourceConfig(kind="jsonl", path=str(STARTER), name="starter", licence="Apache-2.0")
    return load_source(cfg, STARTER.parent)


def _same(value, expected_repr: str) -> bool:
    expected = ast.literal_eval(expected_repr)
    if isinstance(value, float) or isinstance(expected, float):
        return math.isclose(value, expected, rel_tol=1e-9)
    return value == expected and repr(value) == expected_repr


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


def test_every_reference_passes_its_own_tests(starter: pl.DataFrame):
    # Plain exec is enough here: these are our own, trusted references.
    for row in starter.iter_rows(named=True):
        namespace: dict = {}
        exec(row["reference_solution"], namespace)
        for case in Spec.from_json(row["tests"]).cases:
            assert _same(eval(case.call, namespace), case.expected), (row["task_id"], case.call)
