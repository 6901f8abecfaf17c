"""The dedup stage: exact and near duplicates dropped with reasons, first occurrence kept."""

from __future__ import annotations

import pytest

from compiler.errors import DistillcError
from tests.data.conftest import task_frame

LONG = ("Write a function that takes a list of integers and returns a new list containing only the "
        "values that appear exactly once, preserving the order in which they first appeared in the input.\n"
        "def once_only(values):\n    counts = {}\n    for v in values:\n        counts[v] = counts.get(v, 0) + 1\n"
        "    return [v for v in values if counts[v] == 1]\n")


def _rejected(out) -> dict[str, tuple[str, str]]:
    return {r["row_id"]: (r["reason"], r["detail"]) for r in out.rejected.iter_rows(named=True)}


def test_exact_duplicates_ignore_case_and_spacing(run_stage):
    frame = task_frame([{"instruction": "Reverse a string."}, {"instruction": "Sort a list."},
                        {"instruction": "  reverse   a STRING. "}])
    out = run_stage("dedup", frame)
    assert out.frame["row_id"].to_list() == ["r0", "r1"]
    reason, detail = _rejected(out)["r2"]
    assert reason == "duplicate" and "r0 (task t0)" in detail


def test_near_duplicates_are_dropped_and_distinct_rows_kept(run_stage):
    frame = task_frame([
        {"instruction": LONG},
        {"instruction": "Compute the factorial of a non-negative integer recursively and iteratively."},
        {"instruction": LONG.replace("preserving", "keeping")},
        {"instruction": LONG.replace("only the values that appear exactly once", "the squares of all the values")},
    ])
    out = run_stage("dedup", frame)
    assert out.frame["row_id"].to_list() == ["r0", "r1", "r3"]
    reason, detail = _rejected(out)["r2"]
    assert reason == "near_duplicate" and "kept row r0 (task t0)" in detail


def test_threshold_and_switches(run_stage):
    frame = task_frame([{"instruction": LONG}, {"instruction": LONG.replace("preserving", "keeping")},
                        {"instruction": LONG}])
    assert run_stage("dedup", frame, threshold=0.99).frame.height == 2
    assert run_stage("dedup", frame, near=False).frame.height == 2
    assert run_stage("dedup", frame, exact=False, near=False).frame.height == 3


def test_columns_combine_instruction_and_code(run_stage):
    code_a = "def f(x):\n    return x + 1\n"
    frame = task_frame([{"instruction": "Increment.", "code": code_a},
                        {"instruction": "Increment.", "code": "def f(x):\n    return x - 1\n"},
                        {"instruction": "Increment.", "code": code_a}])
    out = run_stage("dedup", frame)
    assert out.frame["row_id"].to_list() == ["r0", "r1"]
    assert run_stage("dedup", frame, columns=["instruction"]).frame.height == 1


def test_task_scope_only_compares_rows_of_one_task(run_stage):
    frame = task_frame([{"task_id": "a", "instruction": "Same."}, {"task_id": "b", "instruction": "Same."},
                        {"task_id": "a", "instruction": "Same."}])
    out = run_stage("dedup", frame, scope="task")
    assert out.frame["row_id"].to_list() == ["r0", "r1"]
    assert run_stage("dedup", frame).frame.height == 1


def test_no_compared_column_is_an_error(run_stage):
    """Caught by the recipe's wiring check, before the stage runs."""
    with pytest.raises(DistillcError, match="reads any of 'completion', and no earlier stage writes one"):
        run_stage("dedup", task_frame([{"instruction": "x"}]), columns=["completion"])
