"""The AKD corpus side end to end on a scripted loopback teacher: the prompts sent, the light filter,
the KD records with both prompts and top-k log-probabilities, the funnel, and the export."""

from __future__ import annotations

import json

import pytest

from compiler.methods.akd.templates import render, task_fields
from tests.akd.conftest import ALPACA, BROKEN, SILENT, akd_recipe
from tests.compiler.conftest import run_cli
from tests.loopback import LoopbackServer

ENHANCED_LARGER = (
    "# Task: Write a function that returns the larger of two numbers.\n"
    "# Input: a = 3, b = 7\n"
    "# Requirements: write a complete, self-contained Python function (or program) that solves the task.\n"
    "# Include all needed imports, give the function a descriptive name, handle edge cases,\n"
    "# and do not print explanations or example usage.\n"
    "```python\n")


def compile_recipe(tmp_path, scripted, **kw):
    with LoopbackServer(answer=scripted) as server:
        recipe = akd_recipe(tmp_path, server.url, **kw)
        store = tmp_path / "store.duckdb"
        r = run_cli("compile", recipe, "--store", store, "--json")
        assert r.code == 0, r.err
        return recipe, store, r.json(), server


def records(tmp_path, store, corpus="akd-test"):
    out = tmp_path / "export"
    r = run_cli("export", corpus, out, "--store", store, "--format", "jsonl")
    assert r.code == 0, r.err
    return [json.loads(line) for line in (out / "data.jsonl").read_text().splitlines()]


def test_enhanced_prompt_plain_student_prompt_filter_and_records(tmp_path, scripted):
    _, store, out, server = compile_recipe(tmp_path, scripted, teacher_with="top_logprobs: 3")
    bodies = {b["prompt"]: b for b in scripted.bodies}
    assert ENHANCED_LARGER in bodies and bodies[ENHANCED_LARGER]["logprobs"] == 3
    assert bodies[ENHANCED_LARGER]["stop"] == ["```"] and bodies[ENHANCED_LARGER]["temperature"] == 0.0
    no_input = next(p for p in bodies if "doubles every item" in p)
    assert "# Input:" not in no_input and no_input.startswith("# Task: Write a function that doubles")
    assert out["rows"] == 6 and server.tally.answered == 8      # 8 tasks, 2 dropped by the filter

    rows = {r["task_id"]: r for r in records(tmp_path, store)}
    assert BROKEN not in rows and SILENT not in rows and set(rows) >= {"0", "1"}
    larger = rows["0"]
    assert larger["variant"] == "AKD" and larger["teacher_prompt"] == ENHANCED_LARGER
    assert larger["prompt"] == ("Below is an instruction that describes a task. Write a response that "
                                "appropriately completes the request.\n\n### Instruction:\nWrite a function that "
                                "returns the larger of two numbers.\na = 3, b = 7\n\n### Response:\n```python\n")
    assert larger["completion"] == ALPACA[0]["output"]
    topk = larger["teacher_topk"]
    assert "".join(topk["token"]) == larger["completion"]
    assert all(len(a) == 3 and len(v) == 3 for a, v in zip(topk["top_token"], topk["top_logprob"]))
    assert topk["top_token"][0][0] == topk["token"][0] and topk["top_logprob"][0][0] < 0

    shown = run_cli("show", "akd-test", "--store", store, "--json").json()["akd"]
    assert shown["tasks"] == 8 and shown["answers"] == 8 and shown["with_topk"] == 8
    assert shown["dropped"] == {"no_code": 1, "syntax_error": 1} and shown["kept"] == {"AKD": 6}
    text = run_cli("show", "akd-test", "--store", store).out
    assert "akd: dropped no_code=1, syntax_error=1" in text and "akd: kept AKD=6" in text


def test_syntax_errors_are_rejections_with_line_and_message(tmp_path, scripted):
    _, store, _, _ = compile_recipe(tmp_path, scripted)
    from compiler.store.db import Store
    with Store.open_readonly(store) as s:
        rows = s.con.execute("SELECT task_id, reason, detail FROM rejections ORDER BY reason").fetchall()
    assert (SILENT, "no_code", "the teacher's answer holds no code") in rows
    [(_, _, detail)] = [r for r in rows if r[1] == "syntax_error"]
    assert detail.startswith("line 1: ") and rows[-1][0] == BROKEN


def test_chat_teacher_plain_choice_and_code_completions(tmp_path, scripted):
    _, store, _, _ = compile_recipe(tmp_path, scripted, teacher_with="prompt_format: chat, prompt: plain, "
                                    "top_logprobs: 2", emit_with="completion: code, teacher_prompt: false")
    asked = [b for b in scripted.bodies if "messages" in b]
    assert len(asked) == 8 and all(b["logprobs"] is True and b["top_logprobs"] == 2 for b in asked)
    assert {b["messages"][0]["content"] for b in asked} >= {"Write a function that returns the larger of two "
                                                             "numbers.\na = 3, b = 7"}
    rows = {r["task_id"]: r for r in records(tmp_path, store)}
    assert SILENT not in rows and BROKEN not in rows
    larger = rows["0"]
    assert larger["completion"] == "```python\n" + ALPACA[0]["output"].rstrip() + "\n```"
    assert larger["teacher_prompt"] is None and larger["teacher_topk"] is None   # no longer the generated text


def test_a_template_file_enters_the_fingerprint(tmp_path, scripted):
    template = tmp_path / "mine.txt"
    template.write_text("## {task}\n## given: {input}\n## write it as {entry_point}\n```python\n")
    first = compile_recipe(tmp_path, scripted, teacher_with=f"prompt: {template.name}")[2]
    assert any(b["prompt"].startswith("## Return the square of the integer n.\n## write it as square\n")
               for b in scripted.bodies)
    template.write_text("### {instruction}\n```python\n")
    second = compile_recipe(tmp_path, scripted, teacher_with=f"prompt: {template.name}")[2]
    assert second["fingerprint"] != first["fingerprint"]
    assert any(b["prompt"].startswith("### Return the square") for b in scripted.bodies)


def test_a_missing_template_file_stops_planning_at_its_line(tmp_path, scripted):
    recipe = akd_recipe(tmp_path, "http://127.0.0.1:9/v1", teacher_with="prompt: nowhere.txt")
    r = run_cli("plan", recipe, "--store", tmp_path / "st.duckdb")
    assert r.code == 1 and len(r.err.strip().splitlines()) == 1
    assert f"{recipe}:15 stages[0].with.prompt: nowhere.txt: no such file" in r.err


def test_a_template_with_an_unknown_field_fails_before_any_call(tmp_path, scripted):
    (tmp_path / "bad.txt").write_text("{task} for {language}\n")
    with LoopbackServer(answer=scripted) as server:
        recipe = akd_recipe(tmp_path, server.url, teacher_with="prompt: bad.txt")
        r = run_cli("compile", recipe, "--store", tmp_path / "st.duckdb")
        assert server.tally.requests == 0
    assert r.code == 1 and "bad.txt: unknown placeholder {language}" in r.err


def test_top_logprobs_need_an_openai_compatible_teacher(tmp_path):
    recipe = akd_recipe(tmp_path, "unused", teacher_with="top_logprobs: 5")
    text = recipe.read_text().replace("backend: openai\n  model: starcoder-7b\n  base_url: unused",
                                      "backend: transformers\n  model: smollm2-135m")
    recipe.write_text(text)
    r = run_cli("compile", recipe, "--store", tmp_path / "st.duckdb")
    assert r.code == 1 and "top_logprobs needs an OpenAI-compatible teacher (backend: openai)" in r.err


@pytest.mark.parametrize("meta, task, rendered", [
    ({"input": "x = 1"}, "Do it.", "A Do it.\nB x = 1\nC\n"),
    ({}, "Do it.\nx = 1", "A Do it.\nx = 1\nC\n"),     # no input known: the line with {input} goes
])
def test_task_fields_split_the_input_off(meta, task, rendered):
    fields = task_fields({"instruction": "Do it.\nx = 1", "meta": json.dumps(meta)})
    assert fields["task"] == task
    assert render("A {task}\nB {input}\nC\n", fields) == rendered


def test_top_k_covers_only_the_tokens_that_spell_the_text():
    """A server may return the token that held the stop string; the text leaves it out."""
    from compiler.llm.types import LLMResult
    from compiler.methods.akd.teacher import topk_of

    lp = (("x", -0.1, (("x", -0.1), ("y", -2.5))), (" = 1", -0.2, ((" = 1", -0.2),)), ("\n```", -0.3, ()))
    got = topk_of(LLMResult(ok=True, text="x = 1\n", logprobs=lp))
    assert got == {"token": ["x", " = 1"], "top_token": [["x", "y"], [" = 1"]], "top_logprob": [[-0.1, -2.5], [-0.2]]}
    assert topk_of(LLMResult(ok=True, text="zzz", logprobs=lp)) is None
    assert topk_of(LLMResult(ok=True, text="x = 1", logprobs=None)) is None
