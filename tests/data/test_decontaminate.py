"""The decontaminate stage: rows overlapping HumanEval / MBPP problems are dropped with the
benchmark and task id; clean rows are kept; MBPP splits are selectable."""

from __future__ import annotations

import json

import pytest

from compiler.stages.decontaminate import benchmark_index
from evals.problems import load_problems
from tests.data.conftest import SANITIZED_MBPP, STARTER, task_frame

MBPP = {"mbpp_path": str(SANITIZED_MBPP)}


@pytest.fixture(scope="module")
def humaneval_12():
    return load_problems("humaneval")[12]


def test_a_copied_humaneval_solution_is_dropped_and_a_clean_row_kept(run_stage, humaneval_12):
    copied = humaneval_12.reference.replace("longest", "pick_longest")
    frame = task_frame([
        {"instruction": "Return the longest string of a list.", "code": copied},
        {"instruction": "Return the product of the digits of n.",
         "code": "def digit_product(n):\n    out = 1\n    for ch in str(abs(n)):\n        out *= int(ch)\n    return out\n"},
    ])
    out = run_stage("decontaminate", frame, **MBPP)
    assert out.frame["row_id"].to_list() == ["r1"]
    rejected = out.rejected.row(0, named=True)
    assert rejected["reason"] == "contaminated" and rejected["row_id"] == "r0"
    assert rejected["detail"].startswith("humaneval:HumanEval/12 (code shares ")


def test_a_paraphrased_benchmark_instruction_is_caught_in_the_instruction_column(run_stage):
    problem = load_problems("mbpp", path=str(SANITIZED_MBPP), limit=3)[2]
    long_text = problem.prompt + " " + "Make sure the function handles empty inputs gracefully and quickly."
    out = run_stage("decontaminate", task_frame([{"instruction": long_text}]), ngram=5, **MBPP)
    assert out.rejected["detail"].to_list()[0].startswith(f"mbpp:{problem.task_id} (instruction")


def test_mbpp_splits_select_what_counts_as_contamination(run_stage):
    train = load_problems("mbpp", path=str(SANITIZED_MBPP), subset="train", limit=1)[0]
    frame = task_frame([{"instruction": train.prompt, "reference_solution": train.reference}])
    assert run_stage("decontaminate", frame, **MBPP).frame.height == 1
    out = run_stage("decontaminate", frame, mbpp_splits=["train"], benchmarks=["mbpp"], **MBPP)
    assert out.frame.height == 0
    assert out.rejected["detail"][0].startswith(f"mbpp:{train.task_id} ")


def test_min_overlap_sets_how_much_must_be_shared(run_stage, humaneval_12):
    body = humaneval_12.reference.split('"""')[-1]          # the solution without the docstring
    padding = "\n".join(f"    extra_{i} = compute_something_else({i}, {i + 1}, {i + 2})" for i in range(40))
    code = "def unrelated():\n" + padding + "\n" + body
    frame = task_frame([{"code": code}])
    assert run_stage("decontaminate", frame, **MBPP).frame.height == 0   # contained: overlap of the smaller
    assert run_stage("decontaminate", frame, min_overlap=1.0, ngram=40, **MBPP).frame.height == 1


def test_the_starter_set_is_clean(run_stage):
    rows = [json.loads(line) for line in STARTER.read_text().splitlines()]
    frame = task_frame([{"task_id": r["task_id"], "instruction": r["instruction"],
                         "reference_solution": r["reference_solution"]} for r in rows])
    out = run_stage("decontaminate", frame, **MBPP)
    assert out.rejected.height == 0, out.rejected.to_dicts()


def test_the_benchmark_index_is_built_once_per_process(run_stage):
    frame = task_frame([{"instruction": "Nothing to see here."}])
    run_stage("decontaminate", frame, **MBPP)
    before = benchmark_index.cache_info()
    run_stage("decontaminate", frame, **MBPP)
    after = benchmark_index.cache_info()
    assert after.hits == before.hits + 1 and after.misses == before.misses
