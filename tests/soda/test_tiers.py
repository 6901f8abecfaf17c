"""Tiers come from stored feedback alone: every stored tier is recomputed from its evidence, and new
thresholds re-run ``tier`` and what follows without a model call for the views. Tier rules that
overlap or leave a gap are refused before anything runs."""

from __future__ import annotations

import json

import polars as pl
import pytest

from compiler.methods.soda.tier import AssignTier, Rules
from compiler.store import outputs
from compiler.store.db import Store
from compiler.store.versions import resolve
from tests.compiler.conftest import file_digest, run_cli
from tests.soda.conftest import stages

VIEWS = ("teacher_correct", "teacher_faulty", "judge_correct", "judge_faulty", "pair", "student_answer",
         "judge_student", "pass_rate")


def with_tier(**params) -> list[dict]:
    plan = stages(1)
    next(s for s in plan if s["uses"] == "tier")["with"] = params
    return plan


def stored(store, stage: str) -> pl.DataFrame:
    with Store.open_readonly(str(store)) as st:
        fp = {s["name"]: s["fingerprint"] for s in resolve(st, "soda-test").stages}[stage]
        return outputs.load_output(st, fp)


def test_every_tier_is_reproducible_from_its_stored_evidence(soda_recipe, store):
    assert run_cli("compile", soda_recipe(stages(1)), "--store", store).code == 0
    rules = Rules.of(AssignTier.Params())
    for row in stored(store, "tier").iter_rows(named=True):
        evidence = json.loads(row["tier_evidence"])
        again = rules.assign(evidence["score"], evidence["check"], evidence["pass_rate"])
        assert again == evidence and again["tier"] == row["tier"]


def view_calls(store) -> int:
    with Store.open_readonly(str(store)) as st:
        fps = [s["fingerprint"] for s in resolve(st, "soda-test").stages if s["name"] in VIEWS]
        return st.con.execute("SELECT count(*) FROM llm_calls WHERE list_contains(?, stage_fp)", [fps]).fetchall()[0][0]


def test_new_thresholds_rerun_tier_and_what_follows_with_no_call_for_the_views(soda_recipe, store, servers):
    first = run_cli("compile", soda_recipe(stages(1)), "--store", store, "--json")
    assert first.code == 0, first.err
    before, calls = stored(store, "tier"), view_calls(store)
    answered = {role: s.tally.answered for role, s in servers.items()}
    bands = {"hard": "[0, 4]", "medium": "(4, 5.5)", "easy": "[5.5, 6]"}
    again = run_cli("compile", soda_recipe(with_tier(score_bands=bands)), "--store", store, "--json")
    assert again.code == 0, again.err
    ran = {s["name"] for s in again.json()["stages"] if not s["cached"]}
    assert ran == {"tier", "new_questions", "emit_soda"}
    assert servers["student"].tally.answered == answered["student"]          # no view asked again
    assert servers["judge"].tally.answered == answered["judge"]
    assert view_calls(store) == calls and again.json()["llm_calls"] == servers["teacher"].tally.answered - \
        answered["teacher"]                                                   # only new_questions called
    was = {r["task_id"]: r["tier"] for r in before.iter_rows(named=True)}
    now = {r["task_id"]: (r["tier"], r["student_score"]) for r in stored(store, "tier").iter_rows(named=True)}
    assert was["starter/01-square"] == "medium" and now["starter/01-square"] == ("hard", 3.5)
    assert all(tier == "hard" for tier, score in now.values() if score <= 4)


BAD = [
    ({"score_bands": {"hard": "[0, 2]", "medium": "[2, 5)", "easy": "[5, 6]"}}, "score bands overlap: hard [0, 2] and medium [2, 5)"),
    ({"score_bands": {"hard": "[0, 2)", "medium": "(2, 5)", "easy": "[5, 6]"}}, "score bands leave a gap between hard [0, 2) and medium (2, 5)"),
    ({"score_bands": {"hard": "[0, 2]", "easy": "(2, 5]"}}, "score bands leave a gap at 6"),
    ({"pass_rate_bands": {"hard": "[0, 0.6]", "easy": "[0.5, 1]"}}, "pass-rate bands overlap"),
    ({"score_bands": {"hard": "0 to 2"}}, "is not an interval"),
]


@pytest.mark.parametrize("params,why", BAD)
def test_overlapping_or_gapped_tier_rules_are_refused_before_anything_runs(soda_recipe, store, servers, params, why):
    r = run_cli("compile", soda_recipe(with_tier(**params)), "--store", store)
    assert r.code == 1 and len(r.err.strip().splitlines()) == 1, r.err
    assert why in r.err and "stages[12].with" in r.err
    assert file_digest(store) is None and sum(s.tally.requests for s in servers.values()) == 0
