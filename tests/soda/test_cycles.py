"""SODA's cycles on scripted models: cycle 2's seeds are exactly cycle 1's new questions that survived
deduplication and decontamination; every row carries its cycle; ``distillc cost --by stage`` splits the
cost per cycle; a student checkpoint per cycle; stored cycles are reused."""

from __future__ import annotations

import polars as pl
import pytest

from compiler.store import outputs
from compiler.store.db import Store
from compiler.store.versions import resolve
from tests.compiler.conftest import file_digest, run_cli
from tests.soda.conftest import stages


def load(store, corpus: str = "soda-test") -> dict[str, pl.DataFrame]:
    with Store.open_readonly(str(store)) as st:
        return {s["name"]: outputs.load_output(st, s["fingerprint"]) for s in resolve(st, corpus).stages}


@pytest.fixture
def two_cycles(soda_recipe, store):
    r = run_cli("compile", soda_recipe(stages(2)), "--store", store, "--json")
    assert r.code == 0, r.err
    return r.json(), load(store)


def test_cycle_two_seeds_are_the_surviving_new_questions_of_cycle_one(two_cycles, store):
    _, frames = two_cycles
    cycle1 = frames["new_questions"].filter(pl.col("soda_kind") == "new_question")
    with Store.open_readonly(str(store)) as st:
        fp = {s["name"]: s["fingerprint"] for s in resolve(st, "soda-test").stages}["new_questions"]
        dropped = outputs.load_rejections(st, fp)
    assert set(dropped["reason"]) == {"missing_marker", "contaminated"} and cycle1.height > 5
    rows = frames["soda_cycles"]
    cycle2 = rows.filter((pl.col("soda_kind") == "question") & (pl.col("cycle") == 2))
    assert sorted(p for ps in cycle2["parent_ids"] for p in ps) == sorted(cycle1["row_id"])
    assert sorted(cycle2["instruction"]) == sorted(cycle1["instruction"])
    assert set(cycle2["task_id"]) == set(cycle1["task_id"])
    assert not set(cycle2["instruction"]) & set(dropped["detail"])            # a dropped one is no seed
    for row in cycle2.iter_rows(named=True):
        assert row["origin_tier"] in ("easy", "medium", "hard") and row["correct_text"] and row["tier"]


def test_every_row_and_record_carries_its_cycle(two_cycles):
    _, frames = two_cycles
    rows = frames["soda_cycles"]
    counts = rows.group_by("soda_kind", "cycle").len().sort("soda_kind", "cycle").rows()
    questions = {k: n for kind, k, n in counts if kind == "question"}
    assert set(questions) == {1, 2} and questions[1] == 6
    assert {k for kind, k, _ in counts if kind == "new_question"} == {1, 2}
    records = frames["emit_soda"]
    assert set(records["cycle"]) == {1, 2}
    cycle2 = records.filter(pl.col("cycle") == 2)
    assert cycle2.height > 0 and all("/c1q" in t for t in cycle2["task_id"])


def test_cost_by_stage_splits_the_cost_per_cycle(two_cycles, store):
    compiled, _ = two_cycles
    cost = run_cli("cost", "soda-test", "--store", store, "--by", "stage", "--json").json()
    groups = {g["stage"]: g for g in cost["groups"]}
    later = {s: g for s, g in groups.items() if s.startswith("soda_cycles:cycle2:")}
    assert {s.split(":")[2] for s in later} == {"teacher_correct", "teacher_faulty", "judge_correct", "judge_faulty",
                                                "student_answer", "judge_student", "new_questions"}
    assert {"teacher_correct", "judge_student", "new_questions", "pair:label"} <= set(groups)
    assert abs(sum(g["usd"] for g in groups.values()) - cost["usd"]) < 1e-9
    assert sum(g["calls"] for g in groups.values()) == compiled["llm_calls"]
    human = run_cli("cost", "soda-test", "--store", store, "--by", "stage").out
    assert "soda_cycles:cycle2:teacher_correct" in human
    funnel = run_cli("show", "soda-test", "--store", store, "--json").json()["soda"]["cycles"]
    assert [c["cycle"] for c in funnel] == [1, 2]
    assert funnel[1]["cost"]["teacher_correct"]["calls"] == groups["soda_cycles:cycle2:teacher_correct"]["calls"]
    assert funnel[1]["questions"] == funnel[0]["new_questions"]["easy"] + funnel[0]["new_questions"]["medium"] + \
        funnel[0]["new_questions"]["hard"]


def test_a_student_checkpoint_per_cycle(soda_recipe, store, script):
    r = run_cli("compile", soda_recipe(stages(2, checkpoints=["student-after-cycle-1"])), "--store", store)
    assert r.code == 0, r.err
    frames = load(store)
    rows = frames["soda_cycles"].filter(pl.col("soda_kind") == "question")
    models = rows.group_by("cycle").agg(pl.col("student_model").unique()).sort("cycle").rows()
    assert models == [(1, ["scripted-student"]), (2, ["student-after-cycle-1"])]
    with Store.open_readonly(str(store)) as st:
        asked = st.con.execute("SELECT DISTINCT stage, model FROM llm_calls WHERE role = 'student' ORDER BY 1").fetchall()
    assert asked == [("pass_rate", "scripted-student"), ("soda_cycles:cycle2:student_answer", "student-after-cycle-1"),
                     ("student_answer", "scripted-student")]


def test_more_cycles_reuse_the_stored_ones(soda_recipe, store, servers):
    assert run_cli("compile", soda_recipe(stages(2)), "--store", store).code == 0
    answered = sum(s.tally.answered for s in servers.values())
    third = run_cli("compile", soda_recipe(stages(3)), "--store", store, "--json")
    assert third.code == 0, third.err
    with Store.open_readonly(str(store)) as st:
        labels = {r[0] for r in st.con.execute("SELECT stage FROM llm_calls WHERE status != 'cache_hit' "
                                               "AND created_at > (SELECT max(created_at) FROM stage_outputs "
                                               "WHERE stage LIKE 'soda_cycles:cycle2:%')").fetchall()}
    assert labels and all(label.startswith("soda_cycles:cycle3:") for label in labels)
    assert third.json()["llm_calls"] == sum(s.tally.answered for s in servers.values()) - answered
    assert set(load(store)["emit_soda"]["cycle"]) == {1, 2, 3}


@pytest.mark.parametrize("cycles_with,why", [
    ({"cycles": 0}, "stages[14].with.cycles: Input should be greater than or equal to 1"),
    ({"cycles": 3, "checkpoints": ["only-one"]}, "cycles: 3 takes 2 checkpoint(s)"),
    ({"cycles": 2, "repeat": ["teacher_correct", "no_such_stage"]}, "names stage 'no_such_stage'"),
])
def test_bad_cycle_settings_are_refused_before_anything_runs(soda_recipe, store, servers, cycles_with, why):
    plan = stages(1)
    plan.insert(-1, {"uses": "soda_cycles", "with": cycles_with})
    r = run_cli("compile", soda_recipe(plan), "--store", store)
    assert r.code == 1 and len(r.err.strip().splitlines()) == 1 and why in r.err, r.err
    assert file_digest(store) is None and sum(s.tally.requests for s in servers.values()) == 0


def test_per_example_cost_in_sql_equals_the_lineage_walk(two_cycles, store):
    from tests.compiler.test_cost import _same_costs

    fast, _ = _same_costs(store, "soda-test")
    assert fast["examples"] and sum(e["usd"] for e in fast["examples"]) == pytest.approx(fast["total_usd"])
