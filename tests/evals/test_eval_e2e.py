"""End to end: compile a corpus against a loopback teacher, export it, train a tiny random model on
it for a few steps, evaluate the checkpoint on a handful of HumanEval problems in the sandbox, and
find the eval run linked to the corpus version (and compared with the untrained student)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from safetensors.torch import load_file

from tests.compiler.conftest import STAND, STARTER, reference_answerer, run_cli, starter_tasks
from tests.loopback import LoopbackServer

CORPUS = "eval-e2e"


def weights(model_dir: Path) -> dict:
    return load_file(str(model_dir / "model.safetensors"))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(store, compile summary, hf export directory) of a small StanD corpus."""
    os.environ.setdefault("OPENAI_API_KEY", "test-key")
    tmp = tmp_path_factory.mktemp("e2e")
    recipe = tmp / "recipe.yaml"
    store = tmp / "store.duckdb"
    with LoopbackServer(answer=reference_answerer(starter_tasks())) as server:
        recipe.write_text(STAND.format(name=CORPUS, tasks=STARTER, limit=12, url=server.url, n=1,
                                       temperature=0.5, max_per_task=1))
        compiled = run_cli("compile", recipe, "--store", store, "--json")
    assert compiled.code == 0, compiled.err
    export = tmp / "export"
    done = run_cli("export", CORPUS, export, "--format", "hf", "--store", store)
    assert done.code == 0, done.err
    return store, compiled.json(), export


def test_corpus_to_trained_student_to_linked_eval_run(exported, tiny_model_dir, tmp_path):
    from trainers.config import SFTRunConfig
    from trainers.sft import train

    store, compiled, export = exported
    config = SFTRunConfig(learning_rate=5e-3, lr_scheduler_type="constant", warmup_steps=0,
                          per_device_train_batch_size=4, gradient_accumulation_steps=1, max_steps=6,
                          max_length=512)
    out = tmp_path / "student"
    result = train(str(export), student=str(tiny_model_dir), out_dir=str(out), config=config)
    assert sum(result.losses[-2:]) < 0.8 * sum(result.losses[:2])  # it learned something
    before, after = weights(tiny_model_dir), weights(out)
    assert any(not (before[k] == after[k]).all() for k in before)

    base = run_cli("eval", tiny_model_dir, "--limit", "3", "--max-new-tokens", "24", "--store", store, "--json")
    assert base.code == 0, base.err
    trained = run_cli("eval", out, "--limit", "3", "--max-new-tokens", "24", "--store", store, "--json")
    assert trained.code == 0, trained.err
    shown = trained.json()
    assert (shown["corpus"], shown["version"], shown["linked"]) == (CORPUS, compiled["version"], True)
    assert shown["fingerprint"] == compiled["fingerprint"] and shown["problems"] == 3
    assert shown["prompt_format"] == "chat" and set(shown["pass_at_k"]) == {"pass@1"}

    rows = [json.loads(l) for l in (Path(shown["out_dir"]) / "samples.jsonl").read_text().splitlines()]
    assert [r["task_id"] for r in rows] == ["HumanEval/0", "HumanEval/1", "HumanEval/2"]
    for row in rows:  # every answer went through the sandbox
        result_ = row["steps"][0]["result"]
        assert result_["status"] in ("passed", "failed", "error", "syntax_error", "timeout")
        assert row["passed"] == (result_["status"] == "passed")

    report = run_cli("report", "--store", store, "--json")
    assert report.code == 0, report.err
    runs = {r["run_id"]: r for r in report.json()["runs"]}
    ours = runs[shown["run_id"]]
    assert ours["corpus"] == CORPUS and ours["version"] == compiled["version"] and ours["linked"]
    assert ours["student"] == str(tiny_model_dir)
    assert ours["delta_pass@1"] == pytest.approx(shown["pass_at_k"]["pass@1"] - base.json()["pass_at_k"]["pass@1"])
    table = run_cli("report", "--store", store)
    assert f"{CORPUS}@{compiled['version']}" in table.out


@pytest.mark.slow
def test_embedded_model_answers_are_run_as_programs(embedded_model_dir, tmp_path):
    """The real SmolLM2 (a chat model): its answer becomes a program defining the entry point."""
    shown = run_cli("eval", embedded_model_dir, "--limit", "2", "--max-new-tokens", "96",
                    "--store", tmp_path / "st.duckdb", "--json")
    assert shown.code == 0, shown.err
    summary = shown.json()
    assert summary["prompt_format"] == "chat" and summary["problems"] == 2
    rows = [json.loads(l) for l in (Path(summary["out_dir"]) / "samples.jsonl").read_text().splitlines()]
    for row, name in zip(rows, ("has_close_elements", "separate_paren_groups")):
        step = row["steps"][0]
        assert step["input"][0]["role"] == "user" and step["text"].strip()
        assert f"def {name}(" in row["solution"]
        assert not any(line.startswith("print(") for line in row["solution"].splitlines())  # demo code gone
        assert step["result"]["status"] in ("passed", "failed", "error", "syntax_error", "timeout")
