"""Expected outputs of MBPP+ inputs, computed by running the canonical solution in the sandbox."""

from __future__ import annotations

import json

import pytest

from evals.expected import fill_expected, needs_expected
from evals.problems import load_problems
from evals.sandbox import Job, run_many
from tests.data.conftest import MBPP_PLUS


@pytest.fixture(scope="module")
def filled():
    problems = load_problems("mbpp+", path=str(MBPP_PLUS), limit=3)
    assert all(needs_expected(p) for p in problems)          # the release carries no outputs
    return problems, fill_expected(problems)


def test_every_input_gets_an_expected_value_in_sandbox_encoding(filled):
    from evals.sandbox.inside.encode import decode

    before, after = filled
    for old, new in zip(before, after):
        assert not needs_expected(new)
        assert len(new.tests.cases) + new.meta["dropped_inputs"] == len(old.tests.cases)
        assert new.tests.cases[0].visibility == "seen"
    assert decode(json.loads(after[0].tests.cases[0].expected)) == (4, 5)   # a tuple survives


def test_filled_problems_pass_with_their_reference_and_fail_with_a_wrong_one(filled):
    # Mbpp/3 and Mbpp/4: outputs that do not depend on string hashing (Mbpp/2's set order of
    # strings does, across processes, unless the sandbox fixes PYTHONHASHSEED).
    _, after = filled
    results = run_many([Job(code=p.reference, tests=p.tests) for p in after[1:]])
    assert [r.passed for r in results] == [True, True]
    wrong = after[1].reference.replace("n == 1", "n == 2")
    assert not run_many([Job(code=wrong, tests=after[1].tests)])[0].passed


def test_an_input_the_reference_rejects_is_dropped():
    problem = load_problems("mbpp+", path=str(MBPP_PLUS), limit=1)[0]
    cases = problem.tests.cases
    bad = [cases[0], cases[1].__class__(kind="input", inputs='[1, 2]'), *cases[2:5]]   # ints: not iterable
    narrowed = problem.__class__(**{**problem.__dict__, "tests": problem.tests.__class__(
        **{**problem.tests.__dict__, "cases": tuple(bad)})})
    out = fill_expected([narrowed])[0]
    assert out.meta["dropped_inputs"] == 1 and len(out.tests.cases) == 4
    assert all(c.inputs != "[1, 2]" for c in out.tests.cases)


def test_a_reference_returning_none_keeps_its_outputs_aligned():
    # Mbpp/113 returns None for blank text: every case must keep its own value, or fail loudly.
    problem = next(p for p in load_problems("mbpp+", path=str(MBPP_PLUS)) if p.task_id == "Mbpp/113")
    try:
        out = fill_expected([problem])[0]
    except RuntimeError as exc:
        pytest.fail(f"oracle outputs misaligned: {exc}")
    assert run_many([Job(code=out.reference, tests=out.tests)])[0].passed
