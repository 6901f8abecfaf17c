"""The CLI contract of compile / plan / ls / show / diff / export, end to end against a loopback
OpenAI-compatible teacher, a real DuckDB file and the real sandbox."""

from __future__ import annotations

import json
import subprocess
import sys

import datasets
import polars as pl
import pytest

from compiler.cli import COMMANDS, build_parser
from tests.compiler.conftest import ROOT, file_digest, run_cli
from tests.tiny_models import train_unchanged

COMPILE_KEYS = {"corpus", "version", "fingerprint", "rows", "stages_run", "stages_cached", "llm_calls", "usd"}


def compile_json(recipe, store, *extra):
    r = run_cli("compile", recipe, "--store", store, "--json", *extra)
    assert r.code == 0, r.err
    return r.json()


def test_compile_then_rerun_is_fully_cached(make_recipe, store, teacher_server):
    recipe = make_recipe(limit=6, n=2)
    before = teacher_server.tally.requests
    first = compile_json(recipe, store)
    assert COMPILE_KEYS <= set(first)
    assert first["version"] == 1 and first["stages_run"] == 6 and first["stages_cached"] == 0
    assert first["llm_calls"] == 12 == teacher_server.tally.requests - before
    assert 0 < first["rows"] <= 12
    again = compile_json(recipe, store)
    assert (again["version"], again["fingerprint"], again["rows"]) == (first["version"], first["fingerprint"], first["rows"])
    assert again["stages_run"] == 0 and again["llm_calls"] == 0 and again["stages_cached"] == 6
    assert teacher_server.tally.requests - before == 12


def test_changed_param_reruns_only_downstream(make_recipe, store):
    first = compile_json(make_recipe(limit=6, n=2, max_per_task=2), store)
    changed = compile_json(make_recipe(limit=6, n=2, max_per_task=1), store)
    assert changed["stages_run"] == 2 and changed["llm_calls"] == 0   # filter and format only
    assert changed["version"] == 2 and changed["fingerprint"] != first["fingerprint"]
    assert changed["rows"] <= 6
    back = compile_json(make_recipe(limit=6, n=2, max_per_task=2), store)
    assert back["version"] == 1 and back["stages_run"] == 0


def test_changed_sampling_param_calls_the_teacher_again(make_recipe, store):
    compile_json(make_recipe(limit=4, n=1, temperature=0.5), store)
    hotter = compile_json(make_recipe(limit=4, n=1, temperature=0.9), store)
    assert hotter["stages_run"] == 5 and hotter["llm_calls"] == 4


def test_plan_lists_stages_and_changes_nothing(make_recipe, store):
    recipe = make_recipe(limit=4, n=1)
    r = run_cli("plan", recipe, "--store", store, "--json")
    assert r.code == 0 and not store.exists()
    assert [s["cached"] for s in r.json()["stages"]] == [False] * 6
    compile_json(recipe, store)
    digest = file_digest(store)
    plan = run_cli("plan", recipe, "--store", store, "--json").json()
    assert [s["cached"] for s in plan["stages"]] == [True] * 6
    assert all(len(s["fingerprint"]) == 20 for s in plan["stages"])
    assert file_digest(store) == digest


def test_ls_show_diff(make_recipe, store):
    compile_json(make_recipe(limit=6, n=2, max_per_task=2), store)
    compile_json(make_recipe(limit=6, n=2, max_per_task=1), store)
    ls = run_cli("ls", "--store", store, "--json").json()
    assert [v["version"] for v in ls["corpora"][0]["versions"]] == [1, 2]
    show = run_cli("show", "stand-test@2", "--store", store, "--json").json()
    stages = {s["name"]: s for s in show["stages"]}
    for s in show["stages"]:
        assert {"rows_in", "rows_out", "dropped", "llm_calls", "usd"} <= set(s)
        assert s["rows_in"] - s["rows_out"] == sum(s["dropped"].values()) or s["name"] == "teacher_answer"
    assert stages["teacher_answer"]["llm_calls"] == 12 and stages["teacher_answer"]["usd"] > 0
    assert stages["teacher_answer"]["rows_out"] == 12
    assert "over_task_quota" in stages["filter"]["dropped"]
    d = run_cli("diff", "stand-test@1", "stand-test@2", "--store", store, "--json").json()
    assert d["added"] == 0 and d["changed"] == 0
    assert d["removed"] == stages["filter"]["dropped"]["over_task_quota"] > 0
    human = run_cli("show", "stand-test", "--store", store)
    assert human.code == 0 and "teacher_answer" in human.out


@pytest.mark.parametrize("fmt", ["hf", "parquet", "jsonl"])
def test_export_formats(make_recipe, store, tmp_path, fmt, tiny_base_model_dir):
    rows = compile_json(make_recipe(limit=4, n=1), store)["rows"]
    out = tmp_path / f"export-{fmt}"
    r = run_cli("export", "stand-test", out, "--format", fmt, "--store", store)
    assert r.code == 0, r.err
    if fmt == "hf":
        ds = datasets.load_from_disk(str(out))
        assert ds.num_rows == rows and {"prompt", "completion"} <= set(ds.column_names)
        assert ds[0]["completion"].startswith("```python\n")
        run = train_unchanged(ds, tiny_base_model_dir, tmp_path / "sft")   # TRL's SFTTrainer, as it is
        assert run["steps"] == 2 and run["moved"] > 0
    elif fmt == "parquet":
        assert pl.read_parquet(out / "data.parquet").height == rows
    else:
        assert len((out / "data.jsonl").read_text().splitlines()) == rows
    assert json.loads((out / "distillc.json").read_text())["version"] == 1
    again = run_cli("export", "stand-test", out, "--format", fmt, "--store", store)
    assert again.code == 1 and "--overwrite" in again.err


BAD_RECIPES = {
    "yaml_syntax": ("name: x\nsources: [\n", ":3", "YAML syntax error"),
    "unknown_key": ("name: x\nsources:\n  - kind: jsonl\n    pth: a.jsonl\n", ":4 sources[0].pth", "did you mean 'path'"),
    "wrong_type": ("name: x\nsources:\n  - kind: jsonl\n    path: a.jsonl\n    limit: lots\n", ":5 sources[0].limit",
                   'expected an integer, got "lots"'),
    "unknown_stage": ("name: x\nsources:\n  - kind: jsonl\n    path: a.jsonl\nstages:\n  - uses: dedupe\n",
                      ":6 stages[0].uses", "did you mean 'dedup'"),
    "missing_source": ("name: x\nsources:\n  - kind: jsonl\n    path: missing.jsonl\n", ":4 sources[0].path",
                       "missing.jsonl: source file not found"),
    "misspelt_section": ("name: x\nsourcez:\n  - kind: jsonl\n    path: a.jsonl\n", ":2 sourcez", "did you mean 'sources'"),
}


@pytest.mark.parametrize("case", sorted(BAD_RECIPES))
def test_bad_input_one_line_exit_1_store_untouched(make_recipe, store, tmp_path, case):
    compile_json(make_recipe(limit=2, n=1), store)
    digest = file_digest(store)
    text, where, says = BAD_RECIPES[case]
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    for verb in ("compile", "plan"):
        r = run_cli(verb, bad, "--store", store)
        assert r.code == 1
        lines = r.err.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in r.err
        assert where in lines[0] and says in lines[0]
    assert file_digest(store) == digest
    fresh = tmp_path / "fresh.duckdb"
    assert run_cli("compile", bad, "--store", fresh).code == 1 and not fresh.exists()


def test_unknown_corpus_and_missing_store(make_recipe, store, tmp_path):
    compile_json(make_recipe(limit=2, n=1), store)
    for argv in (["show", "nope"], ["export", "nope", tmp_path / "o"], ["diff", "nope@1", "stand-test@1"],
                 ["show", "stand-test@9"]):
        r = run_cli(*argv, "--store", store)
        assert r.code == 1 and len(r.err.strip().splitlines()) == 1
    assert "unknown corpus 'nope'" in run_cli("show", "nope", "--store", store).err
    r = run_cli("ls", "--store", tmp_path / "none.duckdb")
    assert r.code == 1 and "no store here" in r.err and not (tmp_path / "none.duckdb").exists()


def test_debug_shows_the_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\n")
    argv = [sys.executable, "-m", "compiler.cli", "compile", str(bad), "--store", str(tmp_path / "s.duckdb")]
    plain = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=120)
    debug = subprocess.run(argv + ["--debug"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert plain.returncode == 1 and "Traceback" not in plain.stderr and len(plain.stderr.strip().splitlines()) == 1
    assert debug.returncode != 0 and "Traceback (most recent call last)" in debug.stderr
    assert "RecipeError" in debug.stderr and "sources" in debug.stderr


def test_every_command_has_help_with_example_and_store_flag():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) >= {"compile", "plan", "ls", "show", "diff", "export"}
    for name, p in sub.choices.items():
        text = p.format_help()
        example = text.split("example:\n  ", 1)[1]
        assert f"distillc {name} " in example, name
        reads_store = any(o == "--store" for a in p._actions for o in a.option_strings)
        if name in ("compile", "plan", "ls", "show", "diff", "export", "cost", "publish", "report", "view"):
            assert reads_store, f"{name} lacks --store"
    assert set(sub.choices) <= set(COMMANDS)


def test_console_script_runs_and_progress_goes_to_stderr(make_recipe, store):
    recipe = make_recipe(limit=3, n=1)
    env = {"DISTILLC_PROGRESS": "1", "OPENAI_API_KEY": "k", "PATH": "/usr/bin:/bin"}
    p = subprocess.run([sys.executable, "-m", "compiler.cli", "compile", str(recipe), "--store", str(store),
                        "--json"], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["rows"] == 3          # three tasks, each answered with its reference
    assert "teacher_answer" in p.stderr   # the progress bar names the stage
