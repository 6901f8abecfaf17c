"""The wiring check: a stage that reads a column no earlier stage writes stops ``plan`` and
``compile`` with one located line and exit 1, before any call, sandbox run or store write."""

from __future__ import annotations

import pytest

from tests.compiler.conftest import STARTER, file_digest, run_cli

GOOD = """\
name: wired
sources:
  - kind: jsonl
    path: {tasks}
    limit: 3
teacher:
  backend: openai
  model: gpt-4o-mini
  base_url: {url}
stages:
  - uses: teacher_answer
  - uses: extract_code
  - uses: execute
{extra}"""


def recipe(make_recipe, teacher_server, extra: str, name: str = "wired"):
    return make_recipe(name, text=GOOD.format(tasks=STARTER, url=teacher_server.url, extra=extra))


@pytest.fixture
def compiled_store(make_recipe, teacher_server, store):
    """A store with one good compile in it (the bad recipes must leave it byte for byte)."""
    r = run_cli("compile", recipe(make_recipe, teacher_server, "", "good"), "--store", store)
    assert r.code == 0, r.err
    return store


@pytest.mark.parametrize("command", ["plan", "compile"])
def test_a_misspelt_column_stops_before_anything_runs(command, make_recipe, teacher_server, compiled_store):
    bad = recipe(make_recipe, teacher_server, "  - uses: filter\n    with: {passed: exec_pased}\n")
    before, requests = file_digest(compiled_store), teacher_server.tally.requests
    r = run_cli(command, bad, "--store", compiled_store)
    assert r.code == 1 and r.out == ""
    lines = r.err.strip().splitlines()
    assert lines == [f"distillc: error: {bad}:15 stages[3].with.passed: stage 'filter' reads column "
                     "'exec_pased', which no earlier stage writes (did you mean 'exec_passed'?)"]
    assert file_digest(compiled_store) == before
    assert teacher_server.tally.requests == requests            # the loopback server saw nothing


def test_a_missing_store_is_not_created_by_a_bad_recipe(make_recipe, teacher_server, store):
    bad = recipe(make_recipe, teacher_server, "  - uses: extract_code\n    name: again\n    with: {column: anwser}\n")
    r = run_cli("compile", bad, "--store", store)
    assert r.code == 1 and "reads column 'anwser'" in r.err and "did you mean 'answer'?" in r.err
    assert not store.exists()


def test_a_template_placeholder_is_a_column_too(make_recipe, teacher_server, store):
    text = GOOD.replace("  - uses: teacher_answer\n", "  - uses: teacher_answer\n    with:\n"
                        "      template: \"Solve: {{instrution}} (literal braces: {{{{x}}}})\"\n")
    bad = make_recipe("tpl", text=text.format(tasks=STARTER, url=teacher_server.url, extra=""))
    r = run_cli("plan", bad, "--store", store)
    assert r.code == 1
    assert "stages[0]: stage 'teacher_answer' reads column 'instrution'" in r.err
    assert "did you mean 'instruction'?" in r.err


def test_records_replace_the_frame(make_recipe, teacher_server, store):
    bad = recipe(make_recipe, teacher_server, "  - uses: format\n  - uses: extract_code\n    name: again\n")
    r = run_cli("plan", bad, "--store", store)
    assert r.code == 1 and "stage 'again' (extract_code) reads column 'answer'" in r.err


def test_a_stage_named_as_an_earlier_one_must_run_before(make_recipe, teacher_server, store, tmp_path):
    text = f"""\
name: rounds
sources: [{{kind: jsonl, path: {STARTER}, limit: 2}}]
teacher: {{backend: openai, model: t, base_url: {teacher_server.url}}}
student: {{backend: openai, model: s, base_url: {teacher_server.url}}}
stages:
  - uses: student_attempt
  - uses: execute
    with: {{code: attempt_code, prefix: attempt}}
  - uses: teacher_refine
  - uses: persd_rounds
    with: {{rounds: 2, checkpoints: [ckpt], repeat: [student_attempt, excute]}}
"""
    r = run_cli("plan", make_recipe("rounds", text=text), "--store", store)
    assert r.code == 1
    assert ":11 stages[3].with.repeat: stage 'persd_rounds' names stage 'excute', which does not run before it " \
           "(did you mean 'execute'?)" in r.err


def test_any_of_needs_one(make_recipe, teacher_server, store):
    bad = recipe(make_recipe, teacher_server, "  - uses: dedup\n    with: {columns: [cod, instrution]}\n")
    r = run_cli("plan", bad, "--store", store)
    assert r.code == 1 and "reads any of 'cod', 'instrution', and no earlier stage writes one" in r.err


def test_every_shipped_stage_declares_what_it_reads_and_writes():
    from compiler.stages import load_all

    for name, cls in load_all().items():
        cols = cls.columns(cls.Params.model_construct())
        assert cols.reads or cols.any_of, f"{name} declares no reads"
        assert cls.scope_for(cls.Params.model_construct()) in ("row", "task", "frame")
