"""Restoring the tuple/set argument types that MBPP+'s JSON inputs lose."""

from __future__ import annotations

import json

from evals.evalplus_inputs import conform, example_args, typed_inputs
from evals.problems import load_problems
from tests.data.conftest import MBPP_PLUS


def test_example_args_come_from_the_first_call_of_the_entry_point():
    text = "\nassert set(f((1, 2), [3])) == {1}\nassert f((0,), []) == 0\n"
    assert example_args(text, "f") == [(1, 2), [3]]
    assert example_args("assert g(x) == 1", "g") is None
    assert example_args("assert h(1) == 1", "f") is None


def test_conform_follows_records_homogeneous_sequences_and_deeper_nesting():
    assert conform([1, [2, 3]], (0, (0, 0))) == (1, (2, 3))
    assert conform([[1, 2], [3, 4], [5]], [(0, 0)]) == [(1, 2), (3, 4), (5,)]
    assert conform([1, [2, [3, [4]]]], (4, 5, (7, 6, (2, 4)), 6, 8)) == (1, (2, (3, (4,))))
    assert conform([1, 2, 2], {1, 2}) == {1, 2}
    assert conform({"a": [1, 2]}, {"k": (0, 0)}) == {"a": (1, 2)}
    assert conform("text", (1,)) == "text"


def test_inputs_without_tuples_stay_plain_json():
    assert typed_inputs([[[1, 2], 3]], "assert f([1, 2], 3) == 1", "f") == ["[[1, 2], 3]"]


def test_mbpp_plus_tuple_arguments_reach_the_sandbox_as_tuples():
    from evals.sandbox.inside.encode import decode

    problem = load_problems("mbpp+", path=str(MBPP_PLUS), limit=1)[0]   # similar_elements(tup1, tup2)
    args = [decode(json.loads(c.inputs)) for c in problem.tests.cases]
    assert args[0] == [(3, 4, 5, 6), (5, 7, 4, 10)]
    assert all(isinstance(a, tuple) for pair in args for a in pair)
