"""One SODA cycle on scripted teacher, student and judge: which pairs are kept and why, the error types
of each kept pair, the records (conversational preference pairs and SFT), the tiers, the new questions
and the drops of each."""

from __future__ import annotations

import json

import polars as pl
import pytest

from compiler.store import outputs
from compiler.store.db import Store
from compiler.store.versions import resolve
from tests.compiler.conftest import run_cli
from tests.soda.conftest import stages


@pytest.fixture
def one_cycle(soda_recipe, store):
    r = run_cli("compile", soda_recipe(stages(1)), "--store", store, "--json")
    assert r.code == 0, r.err
    with Store.open_readonly(str(store)) as st:
        v = resolve(st, "soda-test")
        fps = {s["name"]: s["fingerprint"] for s in v.stages}
        frames = {name: outputs.load_output(st, fp) for name, fp in fps.items()}
        drops = {name: outputs.load_rejections(st, fp) for name, fp in fps.items()}
    return frames, drops


def by_task(frame: pl.DataFrame) -> dict[str, dict]:
    return {r["task_id"]: r for r in frame.filter(pl.col("soda_kind") == "question").iter_rows(named=True)}


def test_pairs_are_kept_only_when_correct_passes_and_faulty_differs_and_fails_a_view(one_cycle):
    frames, drops = one_cycle
    rows = by_task(frames["pair"])
    verdicts = {t: (r["pair_kept"], r["pair_reason"], r["rejected_error_types"], r["rejected_error_source"])
                for t, r in rows.items()}
    assert verdicts == {
        "starter/01-square": (True, None, ["Name Error"], "execution"),           # NameError in the sandbox
        "starter/02-is_even": (True, None, ["Logical Error"], "judge"),           # runs; the judge scores it low
        "starter/03-max_of_three": (True, None, ["Syntax Error"], "execution"),
        "starter/04-reverse_text": (False, "faulty_not_failing", None, None),    # runs and scores full marks
        "starter/05-count_vowels": (False, "faulty_identical", None, None),
        "starter/06-total": (False, "correct_not_passing", None, None),          # the correct answer raises
    }
    dropped = drops["pair"].to_dicts()
    assert sorted(d["reason"] for d in dropped) == ["correct_not_passing", "faulty_identical", "faulty_not_failing"]
    assert {d["row_id"] for d in dropped} == {rows[t]["pair_id"] for t, v in verdicts.items() if not v[0]}
    assert frames["pair"].height == 6 and rows["starter/05-count_vowels"]["pair_distance"] == 0.0
    assert rows["starter/01-square"]["faulty_check"] == "fail" and rows["starter/02-is_even"]["faulty_check"] == "pass"
    assert "judge 6 vs 5.5" in next(d["detail"] for d in dropped if d["reason"] == "faulty_not_failing")


def test_the_records_are_conversational_preference_pairs_and_sft_answers(one_cycle):
    frames, _ = one_cycle
    records = frames["emit_soda"]
    pref = records.filter(pl.col("variant") == "SODA").sort("task_id")
    assert pref["task_id"].to_list() == ["starter/01-square", "starter/02-is_even", "starter/03-max_of_three"]
    first = pref.row(0, named=True)
    assert first["prompt"] == [{"role": "user", "content": "Return the square of the integer n.\n\nYour solution "
                                "must define the function `square` with this signature:\ndef square(n):"}]
    assert first["chosen"][0]["role"] == "assistant" and "return n * n" in first["chosen"][0]["content"]
    assert "undefined_total" in first["rejected"][0]["content"] and first["completion"] is None
    assert first["rejected_error_types"] == ["Name Error"] and first["cycle"] == 1
    sft = records.filter(pl.col("variant") == "SODA-sft").sort("task_id")
    assert sft["task_id"].to_list() == pref["task_id"].to_list()
    assert sft["completion"].to_list() == pref["chosen"].to_list() and sft["chosen"].null_count() == 3
    pair_rows = by_task(frames["pair"])
    assert first["parent_ids"] == [pair_rows["starter/01-square"]["row_id"]]


def test_tiers_follow_the_views(one_cycle):
    frames, _ = one_cycle
    rows = by_task(frames["tier"])
    for task, row in rows.items():
        evidence = json.loads(row["tier_evidence"])
        assert evidence["score"] == row["student_score"] and evidence["check"] == row["student_check"]
        assert evidence["pass_rate"] == row["pass_rate"] and evidence["tier"] == row["tier"]
    wrong = rows["starter/02-is_even"]               # the student's answer returns None: it fails its tests
    assert (wrong["student_score"], wrong["pass_rate"], wrong["tier"]) == (1.0, 0.0, "hard")
    for task, row in rows.items():
        score = row["student_score"]
        expected = "hard" if score <= 2 else "medium" if score < 5 else "easy"
        assert row["tier"] == (expected if row["pass_rate"] == 1.0 else "hard"), task


def test_new_questions_per_tier_with_prompt_c_for_easy_and_d_otherwise(one_cycle, script):
    frames, drops = one_cycle
    out = frames["new_questions"]
    made = out.filter(pl.col("soda_kind") == "new_question")
    questions = by_task(out)
    per_tier = {"easy": 1, "medium": 2, "hard": 3}
    asked = sum(per_tier[r["tier"]] for r in questions.values())
    dropped = drops["new_questions"]
    assert made.height + dropped.height == asked == script.asked["new"]
    assert set(dropped["reason"]) <= {"missing_marker", "duplicate", "near_duplicate", "contaminated"}
    for row in made.iter_rows(named=True):
        parent = next(q for q in questions.values() if q["row_id"] == row["parent_ids"][0])
        assert row["origin_tier"] == parent["tier"] and row["cycle"] == 1
        assert row["origin_prompt"] == ("C" if parent["tier"] == "easy" else "D")
        assert row["task_id"].startswith(parent["task_id"] + "/c1q") and row["instruction"]
    assert made["instruction"].n_unique() == made.height


def test_show_prints_the_cycle_funnel(one_cycle, store):
    shown = run_cli("show", "soda-test", "--store", store)
    assert shown.code == 0, shown.err
    lines = [line for line in shown.out.splitlines() if line.startswith("soda:")]
    assert lines[0].split()[1:5] == ["cycle", "questions", "dropped", "pairs"]
    assert lines[1].split()[1:5] == ["1", "6", "0", "3"]
    assert "pairs kept 3, dropped correct_not_passing=1, faulty_identical=1, faulty_not_failing=1" in shown.out
    assert "soda: kept SODA=3, SODA-sft=3" in shown.out
    data = run_cli("show", "soda-test", "--store", store, "--json").json()["soda"]["cycles"][0]
    assert sum(data["tiers"].values()) == 6 and sum(data["judge_scores"].values()) == 6
    assert data["cost"]["teacher_correct"]["calls"] == 6 and data["cost"]["pair"]["calls"] == 1


def test_the_export_keeps_each_variant_to_its_own_columns(one_cycle, store, tmp_path):
    import datasets

    r = run_cli("export", "soda-test", tmp_path / "out", "--store", store, "--json")
    assert r.code == 0, r.err
    info = r.json()
    assert info["default_variant"] == "SODA" and info["variant_dirs"] == {"SODA-sft": "variants/SODA-sft"}
    pref = datasets.load_from_disk(str(tmp_path / "out"))
    sft = datasets.load_from_disk(str(tmp_path / "out" / "variants" / "SODA-sft"))
    assert set(pref.column_names) == {"prompt", "chosen", "rejected", "task_id", "variant", "source", "row_id",
                                      "cycle", "rejected_error_types"}
    assert set(sft.column_names) == {"prompt", "completion", "task_id", "variant", "source", "row_id", "cycle"}
    assert pref[0]["rejected_error_types"] and pref[0]["prompt"][0]["role"] == "user"


def test_a_student_without_a_chat_template_answers_a_raw_prompt(soda_recipe, store, servers):
    plan = [{"uses": "soda_seeds"}, {"uses": "student_answer", "with": {"prompt_format": "completion"}}]
    r = run_cli("compile", soda_recipe(plan, limit=2), "--store", store, "--json")
    assert r.code == 0, r.err
    with Store.open_readonly(str(store)) as st:
        requests = [json.loads(q) for (q,) in st.con.execute("SELECT request FROM llm_cache").fetchall()]
    assert [q["messages"] for q in requests] == [None, None]
    assert sorted(q["prompt"] for q in requests)[0].endswith("def is_even(n):\n\n")


def test_records_are_plain_text_for_a_student_that_does_not_chat(soda_recipe, store, tmp_path):
    import datasets

    from compiler.methods.soda.emit import student_chats
    from compiler.recipe.schema import ModelConfig

    assert student_chats(ModelConfig(model="m", backend="openai")) is True
    assert student_chats(ModelConfig(model="m", backend="openai", chat=False)) is False
    assert student_chats(None) is False
    plan = stages(1)
    plan[-1] = {"uses": "emit_soda", "with": {"conversational": False}}
    assert run_cli("compile", soda_recipe(plan), "--store", store).code == 0
    r = run_cli("export", "soda-test", tmp_path / "out", "--variant", "SODA", "--store", store)
    assert r.code == 0, r.err
    pref = datasets.load_from_disk(str(tmp_path / "out"))
    first = next(row for row in pref if row["task_id"] == "starter/01-square")
    assert first["prompt"] == ("Return the square of the integer n.\n\nYour solution must define the function "
                               "`square` with this signature:\ndef square(n):")
    assert "return n * n" in first["chosen"] and "undefined_total" in first["rejected"]
    assert all(isinstance(row[c], str) for row in pref for c in ("prompt", "chosen", "rejected"))


def test_an_in_process_student_chats_when_its_tokenizer_has_a_chat_template(tiny_model_dir, tiny_base_model_dir):
    from compiler.methods.soda.emit import student_chats
    from compiler.recipe.schema import ModelConfig

    assert student_chats(ModelConfig(model=str(tiny_model_dir), backend="transformers")) is True
    assert student_chats(ModelConfig(model=str(tiny_base_model_dir), backend="transformers")) is False
    assert student_chats(ModelConfig(model=str(tiny_base_model_dir), backend="transformers", chat=True)) is True
