"""PERsD end to end against a scripted student and a scripted teacher (loopback servers): who pays
for what, what is dropped and why, and how every kept example links back to its task."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from compiler.runner import compile_recipe
from compiler.store import outputs
from compiler.store.db import Store
from compiler.store.versions import resolve
from tests.compiler.conftest import run_cli
from tests.persd.conftest import FIXED, LIMIT, STUDENT_FAILS, TEACHER_PROSE, TEACHER_WRONG

PASSING = LIMIT - len(STUDENT_FAILS)


@pytest.fixture
def compiled(persd_recipe, store, student, teacher):
    student.script.asked.clear()
    teacher.script.refined.clear()
    return compile_recipe(persd_recipe(), str(store))


def stage_output(store_path: Path, name: str, ref: str = "persd-test") -> pl.DataFrame:
    with Store.open_readonly(str(store_path)) as store:
        v = resolve(store, ref)
        fp = next(s["fingerprint"] for s in v.stages if s["name"] == name)
        return outputs.load_output(store, fp)


def ledger(store_path: Path) -> list[dict[str, Any]]:
    with Store.open_readonly(str(store_path)) as store:
        rows = store.con.execute("SELECT role, stage, status, usd, served_rows FROM llm_calls").fetchall()
    return [{"role": r, "stage": s, "status": st, "usd": u, "served": json.loads(sr or "[]")}
            for r, s, st, u, sr in rows]


def rejected(store_path: Path, name: str) -> dict[str, str]:
    with Store.open_readonly(str(store_path)) as store:
        v = resolve(store, "persd-test")
        fp = next(s["fingerprint"] for s in v.stages if s["name"] == name)
        rows = store.con.execute("SELECT task_id, reason FROM rejections WHERE fingerprint = ?", [fp]).fetchall()
    return dict(rows)


def test_only_failing_attempts_cost_a_teacher_call(compiled, store, teacher):
    calls = ledger(store)
    refine_calls = [c for c in calls if c["stage"] == "teacher_refine"]
    assert all(c["role"] == "teacher" for c in refine_calls)
    assert sorted(teacher.script.refined) == sorted(STUDENT_FAILS)
    attempts = stage_output(store, "execute_attempt")
    refinements = stage_output(store, "teacher_refine")
    served = {r for c in refine_calls for r in c["served"]}
    assert served == set(refinements["row_id"])
    parents = {p for ps in refinements["parent_ids"] for p in ps}
    failing = set(attempts.filter(~pl.col("attempt_passed"))["row_id"])
    passing = set(attempts.filter(pl.col("attempt_passed"))["row_id"])
    assert parents == failing and len(failing) == len(STUDENT_FAILS)
    assert not parents & passing and len(passing) == PASSING
    assert rejected(store, "teacher_refine") == {t: "attempt_passed" for t in set(attempts["task_id"]) - set(STUDENT_FAILS)}
    assert not [c for c in calls if c["stage"] == "synthesize_tests"]  # the starter tasks bring their tests


def test_failed_refinements_are_dropped_with_their_reason(compiled, store):
    assert rejected(store, "keep_refinements") == {t: "refinement_failed" for t in TEACHER_WRONG | TEACHER_PROSE}
    parsed = stage_output(store, "parse_refinement")
    methods = dict(zip(parsed["task_id"], parsed["refine_parse"]))
    assert {t for t, m in methods.items() if m == "student"} == TEACHER_PROSE
    prose = parsed.filter(pl.col("task_id").is_in(list(TEACHER_PROSE)))
    assert prose["refine_code"].to_list() == prose["attempt_code"].to_list()
    kept = stage_output(store, "keep_refinements")
    assert set(kept["task_id"]) == FIXED and kept["refine_passed"].all()


def test_attempt_feedback_is_the_first_failing_test(compiled, store):
    attempts = stage_output(store, "execute_attempt").filter(~pl.col("attempt_passed"))
    feedback = dict(zip(attempts["task_id"], attempts["attempt_feedback"]))
    assert feedback["starter/02-is_even"] == "AssertionError\nINPUT: (4)\nOUTPUT: 12345\nEXPECTED: True"
    assert feedback["starter/05-count_vowels"] == "ValueError : not today"
    assert feedback["starter/09-clean_palindrome"].startswith("SyntaxError")
    codes = stage_output(store, "execute_attempt")["attempt_code"].to_list()
    assert not any("demo line" in c for c in codes)  # PERsD's clean-up cut the trailing demo code


def _rows_by_id(store_path: Path) -> dict[str, tuple[str, dict[str, Any]]]:
    """Every row of every stage output of the version: id → (stage, row); later stages win."""
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    with Store.open_readonly(str(store_path)) as store:
        v = resolve(store, "persd-test")
        for s in v.stages:
            for row in outputs.load_output(store, s["fingerprint"]).iter_rows(named=True):
                found[row["row_id"]] = (s["name"], row)
    return found


def lineage(rows: dict[str, tuple[str, dict[str, Any]]], row_id: str) -> list[tuple[str, dict[str, Any]]]:
    chain = []
    while row_id in rows:
        stage, row = rows[row_id]
        chain.append((stage, row))
        if not row["parent_ids"]:
            break
        row_id = row["parent_ids"][0]
    return chain


def test_kept_examples_link_task_attempt_execution_refinement_execution(compiled, store):
    rows = _rows_by_id(store)
    records = stage_output(store, "emit_persd").filter(pl.col("variant") != "StanD")
    assert records.height > 0
    for record in records.iter_rows(named=True):
        chain = lineage(rows, record["row_id"])
        stages = [stage for stage, _ in chain]
        assert stages == ["emit_persd", "keep_refinements", "execute_attempt", "synthesize_tests"]
        _, refinement = chain[1]
        _, attempt = chain[2]
        _, task = chain[3]
        assert refinement["refine_passed"] and refinement["refine_code"]        # refinement → its execution
        assert attempt["attempt_passed"] is False and attempt["attempt_feedback"]  # attempt → its execution
        assert task["task_id"] == record["task_id"] == attempt["task_id"]
        assert refinement["parent_ids"] == [attempt["row_id"]] and attempt["parent_ids"] == [task["row_id"]]


def test_ledger_costs_reach_every_kept_example(compiled, store):
    """Each kept PERsD example's ancestors were served by exactly one student and one teacher call,
    both paid; StanD examples cost no call."""
    rows = _rows_by_id(store)
    calls = ledger(store)
    for record in stage_output(store, "emit_persd").iter_rows(named=True):
        ancestors = {row["row_id"] for _, row in lineage(rows, record["row_id"])}
        paid = [c for c in calls if ancestors & set(c["served"])]
        roles = sorted(c["role"] for c in paid)
        if record["variant"] == "StanD":
            assert roles == []
        else:
            assert roles == ["student", "teacher"] and all(c["usd"] > 0 for c in paid)


def test_distillc_cost_attributes_attempt_and_refinement_to_each_example(compiled, store):
    """Each example of a fixed task pays an equal share of that task's student attempt and teacher
    refinement (the five records descending from the refinement); all examples add up to the total."""
    r = run_cli("cost", "persd-test", "--store", store, "--by", "example", "--json")
    assert r.code == 0, r.err
    out = r.json()
    examples = out["examples"]
    assert sum(e["usd"] for e in examples) == pytest.approx(out["usd"])
    calls = ledger(store)
    for task in FIXED:
        mine = [e for e in examples if e["task_id"] == task and e["variant"] != "StanD"]
        assert len(mine) == 5   # InpD, PERsD, PERsD-refine and both halves of PERsD-combined
        attempt = stage_output(store, "execute_attempt").filter(pl.col("task_id") == task)["row_id"][0]
        refinement = stage_output(store, "keep_refinements").filter(pl.col("task_id") == task)["row_id"][0]
        paid = sum(c["usd"] for c in calls if {attempt, refinement} & set(c["served"]))
        assert paid > 0
        assert all(e["ancestors_usd"] == pytest.approx(paid / 5) for e in mine)


def test_show_prints_the_persd_funnel(compiled, store):
    r = run_cli("show", "persd-test", "--store", store)
    assert r.code == 0, r.err
    assert f"persd: tasks={LIMIT}  attempts={LIMIT} (passed {PASSING}, failed {len(STUDENT_FAILS)})" in r.out
    assert "persd: refinements requested=4  parsed=3  passed=2" in r.out
    assert "persd: kept InpD=2, PERsD=2, PERsD-combined=4, PERsD-refine=2, StanD=10" in r.out
    data = run_cli("show", "persd-test", "--store", store, "--json").json()
    assert data["persd"]["refinements_requested"] == len(STUDENT_FAILS)
    assert data["persd"]["kept"] == {"InpD": 2, "PERsD": 2, "PERsD-combined": 4, "PERsD-refine": 2, "StanD": 10}


def test_a_second_compile_costs_nothing(compiled, persd_recipe, store, student, teacher):
    before = (len(student.script.asked), len(teacher.script.refined))
    again = compile_recipe(persd_recipe(), str(store))
    assert again.llm_calls == 0 and again.version.version == compiled.version.version
    assert (len(student.script.asked), len(teacher.script.refined)) == before


def test_unfiltered_ablation_keeps_failing_refinements(persd_recipe, store):
    from tests.persd.conftest import PERSD_STAGES

    stages = [s if s["uses"] != "keep_refinements" else {**s, "with": {"unfiltered": True}} for s in PERSD_STAGES]
    compile_recipe(persd_recipe(stages), str(store))
    kept = stage_output(store, "keep_refinements")
    assert set(kept["task_id"]) == set(STUDENT_FAILS)
    assert dict(zip(kept["task_id"], kept["refine_accepted"])) == {t: t in FIXED for t in STUDENT_FAILS}


def test_export_one_variant(compiled, store, tmp_path):
    out = tmp_path / "persd"
    r = run_cli("export", "persd-test", out, "--store", store, "--variant", "PERsD-refine", "--format", "jsonl")
    assert r.code == 0, r.err
    lines = [json.loads(x) for x in (out / "data.jsonl").read_text().splitlines()]
    assert {x["variant"] for x in lines} == {"PERsD-refine"} and len(lines) == len(FIXED)
    assert all(x["prompt"].startswith("Rectify the below code") for x in lines)


def test_hf_export_is_one_dataset_that_sft_trains_unchanged_with_every_variant_beside_it(
        compiled, store, tmp_path, tiny_base_model_dir):
    import datasets

    from tests.tiny_models import train_unchanged
    from trainers.data import load_training_data
    from trainers.errors import TrainError

    out = tmp_path / "hf"
    r = run_cli("export", "persd-test", out, "--store", store, "--json")
    assert r.code == 0, r.err
    info = r.json()
    assert info["default_variant"] == "PERsD-combined"
    assert info["variant_dirs"] == {n: f"variants/{n}" for n in ("PERsD", "StanD", "InpD", "PERsD-refine")}
    top = datasets.load_from_disk(str(out))
    assert isinstance(top, datasets.Dataset) and set(top["variant"]) == {"PERsD-combined"}
    assert top.column_names[:2] == ["prompt", "completion"]
    parts = {"PERsD-combined": top.num_rows}
    for name, sub in info["variant_dirs"].items():
        part = datasets.load_from_disk(str(out / sub))
        assert isinstance(part, datasets.Dataset) and set(part["variant"]) == {name}
        parts[name] = part.num_rows
    assert sum(parts.values()) == info["rows"] and min(parts.values()) > 0      # nothing lost, nothing twice
    # what the contract promises: load_from_disk(OUT) goes into TRL's SFTTrainer as it is
    run = train_unchanged(top, tiny_base_model_dir, tmp_path / "sft")
    assert run["steps"] == 2 and run["moved"] > 0 and run["last_loss"] == run["last_loss"]   # not NaN
    # distillc's own trainer reads the same directory by variant
    assert len(load_training_data(f"{out}", variant="PERsD").dataset) == parts["PERsD"]
    assert load_training_data(f"{out}", variant="PERsD-combined").provenance["variant"] == "PERsD-combined"
    with pytest.raises(TrainError, match="holds several variants"):
        load_training_data(str(out))
    with pytest.raises(TrainError, match=r"no variant 'SODA' \(variants: InpD, PERsD, PERsD-combined"):
        load_training_data(str(out), variant="SODA")


def test_plan_estimate_counts_refinements_only_for_failures(persd_recipe, store):
    r = run_cli("plan", persd_recipe(), "--estimate", "--json", "--store", store)
    assert r.code == 0, r.err
    stages = {s["name"]: s for s in r.json()["estimate"]["stages"]}
    assert stages["student_attempt"]["calls"] == {"low": LIMIT, "expected": LIMIT, "high": LIMIT}
    refine = stages["teacher_refine"]["calls"]
    assert refine["low"] == 0 and refine["expected"] < refine["high"] == LIMIT
    assert stages["teacher_refine"]["prompt_tokens"]["expected"] > 0
