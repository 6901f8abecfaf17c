"""PERsD as the paper's scripts have it, beyond the defaults: the teacher's own gold solution
(``gold: teacher``), the natural-language feedback format and the gold-as-refinement ablation."""

from __future__ import annotations

import json

import pytest

from compiler.runner import compile_recipe
from tests.compiler.conftest import run_cli
from tests.persd.conftest import FIXED, PERSD_STAGES, STUDENT_FAILS, TEACHER_PROSE
from tests.persd.test_pipeline import ledger, rejected, stage_output


def with_params(stage: str, **params) -> list[dict]:
    return [{**s, "with": {**s.get("with", {}), **params}} if s["uses"] == stage else s for s in PERSD_STAGES]


def records(store, variant: str) -> dict[str, dict]:
    out = stage_output(store, "emit_persd")
    rows = out.filter(out["variant"] == variant).to_dicts()
    return {r["task_id"]: r for r in rows}


@pytest.fixture
def teacher_gold(persd_recipe, store, teacher):
    teacher.script.golds.clear()
    teacher.script.refined.clear()
    return compile_recipe(persd_recipe(with_params("teacher_refine", gold="teacher")), str(store))


def test_gold_teacher_asks_once_per_failing_task_and_shows_in_the_ledger(teacher_gold, store, teacher):
    assert sorted(teacher.script.golds) == sorted(STUDENT_FAILS)       # passing attempts cost no gold call
    gold_calls = [c for c in ledger(store) if c["stage"] == "teacher_refine:gold"]
    assert len(gold_calls) == len(STUDENT_FAILS) and all(c["role"] == "teacher" for c in gold_calls)
    by_stage = {r["stage"]: r for r in run_cli("cost", "persd-test", "--by", "stage", "--store", store,
                                                "--json").json()["groups"]}
    assert by_stage["teacher_refine:gold"]["calls"] == len(STUDENT_FAILS)
    funnel = run_cli("show", "persd-test", "--store", store, "--json").json()["persd"]
    assert funnel["refinements_requested"] == len(STUDENT_FAILS)      # gold calls are not refinements


def test_gold_teacher_is_the_first_turn_and_the_inpd_target(teacher_gold, store):
    refinements = stage_output(store, "teacher_refine")
    for row in refinements.iter_rows(named=True):
        chat = json.loads(row["refine_messages"])
        assert chat[1]["role"] == "assistant" and "# teacher gold" in chat[1]["content"]
        assert row["gold_origin"] == "teacher" and "# teacher gold" in row["gold_code"]
    inpd = records(store, "InpD")
    assert set(inpd) == FIXED
    assert all(r["completion"].startswith("    # teacher gold\n") for r in inpd.values())
    stand = records(store, "StanD")                     # StanD keeps the tasks' references
    assert not any("# teacher gold" in r["completion"] for r in stand.values())


def test_gold_reference_is_the_default_and_recorded(persd_recipe, store, teacher):
    teacher.script.golds.clear()
    compile_recipe(persd_recipe(), str(store))
    assert teacher.script.golds == []
    refinements = stage_output(store, "teacher_refine")
    assert set(refinements["gold_origin"]) == {"reference"}
    assert list(refinements["gold_code"]) == list(refinements["reference_solution"])


def test_nl_feedback_becomes_its_own_variant(persd_recipe, store):
    compile_recipe(persd_recipe(with_params("teacher_refine", feedback="nl")), str(store))
    nl = records(store, "PERsD-refine-nl")
    assert set(nl) == FIXED
    for task_id, r in nl.items():
        assert r["prompt"].startswith("Rectify the below code") and r["prompt"].endswith("\n\nFEEDBACK:\n")
        assert "\nERROR:\n" in r["prompt"] and "# rectified" not in r["prompt"]
        feedback, code = r["completion"].split("\n\nRECTIFIED CODE:\n")
        assert feedback == f"The function mishandles the case in the error ({task_id})."
        assert code.startswith("```python\n") and "# rectified" in code
    # the five paper variants are still there
    kept = run_cli("show", "persd-test", "--store", store, "--json").json()["variants"]
    assert kept["PERsD-refine-nl"] == len(FIXED) and kept["PERsD"] == len(FIXED) and kept["StanD"] == 10


def test_nl_variant_without_feedback_text_is_a_rejection(persd_recipe, store):
    stages = with_params("emit_persd", variants=["PERsD-refine-nl"])
    compile_recipe(persd_recipe(stages), str(store))     # auto feedback: the teacher wrote none
    assert records(store, "PERsD-refine-nl") == {}
    assert set(rejected(store, "emit_persd").values()) == {"no_feedback"}


def test_gold_as_refinement_ablation(persd_recipe, store):
    stages = with_params("emit_persd", variants=["PERsD", "PERsD-refine-gold"])
    compile_recipe(persd_recipe(stages), str(store))
    ablation, persd = records(store, "PERsD-refine-gold"), records(store, "PERsD")
    assert set(ablation) == set(persd) == FIXED                      # the same tasks as PERsD
    for task_id, r in ablation.items():
        assert r["prompt"].startswith("Rectify the below code") and "ERROR:" in r["prompt"]
        assert "# rectified" not in r["completion"] and "# rectified" in persd[task_id]["completion"]
    assert TEACHER_PROSE.isdisjoint(ablation)
