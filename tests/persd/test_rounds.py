"""Online PERsD: a second round re-attempts only the tasks still failing, with the round's
student checkpoint, and refines only its failures."""

from __future__ import annotations

import polars as pl
import pytest

from compiler.runner import compile_recipe
from compiler.store import outputs
from compiler.store.db import Store
from compiler.store.versions import resolve
from tests.compiler.conftest import run_cli
from tests.persd.conftest import PERSD_STAGES, STUDENT_FAILS

ROUND2 = "scripted-student-round2"
# The round-2 student solves is_even and fails the other three in a new way (so the teacher sees
# new code and is asked again rather than answered from the cache).
ROUND2_FAILS = {"starter/05-count_vowels": "value", "starter/07-to_fahrenheit": "value",
                "starter/09-clean_palindrome": "value"}


def rounds_stages(rounds: int, checkpoints: list[str]) -> list[dict]:
    at = next(i for i, s in enumerate(PERSD_STAGES) if s["uses"] == "keep_refinements")
    step = {"uses": "persd_rounds", "with": {"rounds": rounds, "checkpoints": checkpoints}}
    return PERSD_STAGES[:at] + [step] + PERSD_STAGES[at:]


@pytest.fixture
def two_rounds(persd_recipe, store, student, teacher):
    student.script.checkpoints[ROUND2] = dict(ROUND2_FAILS)
    student.script.asked.clear()
    teacher.script.refined.clear()
    try:
        compile_recipe(persd_recipe(rounds_stages(2, [ROUND2])), str(store))
    finally:
        student.script.checkpoints.clear()
    with Store.open_readonly(str(store)) as st:
        v = resolve(st, "persd-test")
        fp = {s["name"]: s["fingerprint"] for s in v.stages}
        frames = {name: outputs.load_output(st, f) for name, f in fp.items()}
        calls = st.con.execute("SELECT stage, role, model FROM llm_calls").fetchall()
    return frames, calls


def test_round_two_attempts_only_the_tasks_still_failing(two_rounds, student):
    _, calls = two_rounds
    round2 = sorted(t for model, t in student.script.asked if model == ROUND2)
    assert round2 == sorted(STUDENT_FAILS)
    assert sorted(c for c in calls if c[0] == "persd_rounds" and c[1] == "student") == \
        [("persd_rounds", "student", ROUND2)] * len(STUDENT_FAILS)


def test_round_two_refines_only_its_failures(two_rounds, teacher):
    frames, calls = two_rounds
    assert sum(1 for c in calls if c[:2] == ("persd_rounds", "teacher")) == len(ROUND2_FAILS)
    assert sorted(teacher.script.refined) == sorted(list(STUDENT_FAILS) + list(ROUND2_FAILS))
    rows = frames["persd_rounds"]
    assert rows.group_by("round").len().sort("round").rows() == [(1, 4), (2, 3)]


def test_every_round_reaches_the_training_sets(two_rounds):
    frames, _ = two_rounds
    persd = frames["emit_persd"].filter(pl.col("variant") == "PERsD")
    assert sorted(zip(persd["task_id"], persd["round"])) == [
        ("starter/02-is_even", 1), ("starter/05-count_vowels", 1), ("starter/05-count_vowels", 2)]
    inpd = frames["emit_persd"].filter(pl.col("variant") == "InpD")
    assert sorted(inpd["task_id"]) == ["starter/02-is_even", "starter/05-count_vowels"]


def test_show_sums_the_rounds(two_rounds, store):
    data = run_cli("show", "persd-test", "--store", store, "--json").json()["persd"]
    assert (data["attempts_passed"], data["attempts_failed"]) == (6 + 1, 4 + 3)
    assert (data["refinements_requested"], data["refinements_passed"]) == (7, 3)
    assert [(r["round"], r["attempts_passed"], r["refinements"], r["refinements_passed"]) for r in data["rounds"]] == \
        [(1, 6, 4, 2), (2, 1, 3, 1)]


def test_a_checkpoint_per_later_round_is_required(persd_recipe, store):
    r = run_cli("compile", persd_recipe(rounds_stages(3, [ROUND2])), "--store", store)
    assert r.code == 1 and "needs 2 checkpoint(s)" in r.err
