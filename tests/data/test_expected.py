"""Expected outputs of MBPP+ inputs, computed by running the canonical solution."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest

import evals.sandbox as sandbox
from evals.expected import expected_job, fill_expected, needs_expected, parse_outputs, with_outputs
from evals.problems import load_problems
from tests.data.conftest import MBPP_PLUS


@pytest.fixture(scope="module")
def first_two():
    return load_problems("mbpp+", path=str(MBPP_PLUS), limit=2)


def test_the_data_carries_no_outputs(first_two):
    assert all(needs_expected(p) for p in first_two)


def test_driver_outputs_match_calling_the_reference_directly(first_two):
    from evals.sandbox.inside.encode import decode

    problem = first_two[0]
    job = expected_job(problem)
    proc = subprocess.run([sys.executable, "-c", job.code], capture_output=True, text=True, timeout=120)
    outputs = parse_outputs(proc.stdout, len(problem.tests.cases))
    namespace: dict = {}
    exec(problem.reference, namespace)
    entry = namespace[problem.entry_point]
    for case, out in list(zip(problem.tests.cases, outputs))[:20]:
        value = entry(*copy.deepcopy(json.loads(case.inputs)))
        assert decode(json.loads(out)) == value


def test_rejected_inputs_are_dropped_and_a_seen_case_remains(first_two):
    problem = first_two[1]
    n = len(problem.tests.cases)
    filled = with_outputs(problem, [None] + ["1"] * (n - 1))
    assert len(filled.tests.cases) == n - 1 and filled.meta["dropped_inputs"] == 1
    assert filled.tests.cases[0].visibility == "seen" and not needs_expected(filled)


@pytest.mark.skipif(not hasattr(sandbox, "run_many"), reason="evals.sandbox.run_many has not landed yet")
def test_filled_problems_pass_their_own_tests_in_the_sandbox(first_two):
    from evals.sandbox import Job, run_many

    filled = fill_expected(first_two)
    results = run_many([Job(code=p.reference, tests=p.tests) for p in filled])
    assert [r.passed for r in results] == [True, True]
