"""``plan --estimate`` on PERsD recipes: exact counts where the input is known, this store's history
where it is not (pass rates, kept fractions), priors only when nothing is recorded; each role's calls
priced at its own model."""

from __future__ import annotations

import json

from compiler.runner import compile_recipe
from tests.compiler.conftest import run_cli
from tests.persd.conftest import LIMIT, PERSD_STAGES, STUDENT_FAILS, write_jsonl
from tests.persd.scripted import starter_tasks


def estimate(recipe, store) -> dict[str, dict]:
    r = run_cli("plan", recipe, "--estimate", "--json", "--store", store)
    assert r.code == 0, r.err
    return {s["name"]: s for s in r.json()["estimate"]["stages"]}


def with_params(stage: str, **params) -> list[dict]:
    return [{**s, "with": {**s.get("with", {}), **params}} if s["name" if "name" in s else "uses"] == stage else s
            for s in PERSD_STAGES]


def test_tasks_that_bring_their_tests_cost_no_test_synthesis(persd_recipe, store, tmp_path):
    rows = starter_tasks(6)
    for row in rows[:2]:                 # two tasks without tests: only they need the teacher
        row.pop("tests")
    recipe = persd_recipe(tasks=write_jsonl(tmp_path / "mixed.jsonl", rows), limit=6)
    est = estimate(recipe, store)["synthesize_tests"]
    assert est["basis"] == "exact" and est["calls"] == {"low": 2, "expected": 2, "high": 2}
    est = estimate(persd_recipe(), store)["synthesize_tests"]
    assert est["calls"] == {"low": 0, "expected": 0, "high": 0}


def test_before_any_run_the_priors_and_prices_per_role(persd_recipe, store):
    est = estimate(persd_recipe(), store)
    attempt, refine = est["student_attempt"], est["teacher_refine"]
    assert attempt["basis"] == "prior" and attempt["calls"]["expected"] == LIMIT
    assert set(attempt["by_role"]) == {"student"} and attempt["by_role"]["student"]["model"] == "scripted-student"
    assert refine["basis"] == "prior" and refine["by_role"]["teacher"]["model"] == "gpt-4o-mini"
    assert refine["calls"]["low"] == 0 and refine["calls"]["expected"] == LIMIT / 2


def test_after_a_run_failures_are_counted_from_the_stored_attempts(persd_recipe, store):
    compile_recipe(persd_recipe(), str(store))
    est = estimate(persd_recipe(with_params("teacher_refine", temperature=0.5)), store)
    refine = est["teacher_refine"]
    assert refine["basis"] == "exact" and not refine["cached"]
    assert refine["calls"] == {k: len(STUDENT_FAILS) for k in ("low", "expected", "high")}
    gold = estimate(persd_recipe(with_params("teacher_refine", gold="teacher")), store)["teacher_refine"]
    assert gold["calls"]["expected"] == 2 * len(STUDENT_FAILS)    # plus one gold answer per failing task


def test_a_changed_earlier_stage_uses_this_stores_pass_rate(persd_recipe, store):
    first = compile_recipe(persd_recipe(), str(store))
    assert first.version.rows > 0
    est = estimate(persd_recipe(with_params("student_attempt", temperature=0.5)), store)
    assert est["student_attempt"]["basis"] == "exact"
    refine = est["teacher_refine"]
    assert refine["basis"] == "history" and refine["calls"]["expected"] == len(STUDENT_FAILS)
    kept = est["emit_persd"]["rows_in"]["expected"]
    assert kept == 2                   # the kept fraction of refinements seen in this store


def test_the_estimate_json_names_its_basis_for_every_llm_stage(persd_recipe, store):
    r = run_cli("plan", persd_recipe(), "--estimate", "--json", "--store", store)
    stages = json.loads(r.out)["estimate"]["stages"]
    assert {s["name"]: s.get("basis") for s in stages if "calls" in s} == {
        "synthesize_tests": "exact", "student_attempt": "prior", "teacher_refine": "prior"}
