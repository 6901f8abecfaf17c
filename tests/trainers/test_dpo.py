"""`distillc train ... --method dpo`: TRL's DPOTrainer with DPO + SFT on an exported SODA preference
variant, trained on a tiny random model: the loss is finite and falls, the chosen-minus-rejected reward
margin grows, the reference model is the student as given; the export's ``load_from_disk`` goes into
``DPOTrainer`` as it is; preference training asked of data without pairs fails in one line."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import datasets
import pytest
import torch
import yaml

from tests.compiler.conftest import ROOT, STARTER, run_cli, starter_tasks
from tests.loopback import LoopbackServer
from tests.soda.conftest import CORRECT_BROKEN, FAULTY, LIMIT, STUDENT_WRONG, models, stages
from tests.soda.scripted import SodaScript
from trainers.config import load_spec
from trainers.dpo import LOSS, prepare
from trainers.errors import ConfigError

CONFIG = {"learning_rate": "1.0e-3", "lr_scheduler_type": "constant", "warmup_steps": 0, "max_steps": 8,
          "per_device_train_batch_size": 4, "gradient_accumulation_steps": 1, "max_length": 512}


def compile_soda(directory: Path, name: str, script: SodaScript) -> Path:
    """Compile a two-cycle SODA corpus into its own store (the scripts differ, the requests do not)."""
    os.environ.setdefault("OPENAI_API_KEY", "test-key")
    with LoopbackServer(answer=script) as teacher, LoopbackServer(answer=script) as student, \
            LoopbackServer(answer=script) as judge:
        recipe = {"name": name, "sources": [{"kind": "jsonl", "path": str(STARTER), "limit": LIMIT}],
                  **models({"teacher": teacher, "student": student, "judge": judge}), "stages": stages(2)}
        path = directory / f"{name}.yaml"
        path.write_text(yaml.safe_dump(recipe, sort_keys=False))
        store = directory / f"{name}.duckdb"
        r = run_cli("compile", path, "--store", store)
        assert r.code == 0, r.err
    return store


@pytest.fixture(autouse=True)
def _quiet_datasets():
    """The CLI hides datasets' bars when its own are off; in-process, datasets was imported before."""
    datasets.disable_progress_bars()
    yield
    datasets.enable_progress_bars()


@pytest.fixture(scope="module")
def soda(tmp_path_factory) -> dict[str, Path]:
    """A two-cycle SODA corpus with preference pairs, one without any, and the first's hf export."""
    directory = tmp_path_factory.mktemp("soda")
    tasks = starter_tasks(LIMIT)
    store = compile_soda(directory, "soda-train", SodaScript(tasks, faulty=dict(FAULTY), student_wrong=set(STUDENT_WRONG),
                                                             correct_broken=set(CORRECT_BROKEN)))
    nopairs = compile_soda(directory, "soda-nopairs", SodaScript(tasks, faulty_default="same"))
    export = directory / "export"
    r = run_cli("export", "soda-train", export, "--variant", "SODA", "--store", store)
    assert r.code == 0, r.err
    config = directory / "dpo.yaml"
    config.write_text("".join(f"{k}: {v}\n" for k, v in CONFIG.items()))
    return {"store": store, "nopairs": nopairs, "export": export, "config": config}


def test_dpo_on_the_exported_preference_variant_learns(soda, tiny_model_dir, tmp_path):
    out = tmp_path / "model"
    r = run_cli("train", "soda-train:SODA", "--method", "dpo", "--student", tiny_model_dir, "--out", out,
                "--config", soda["config"], "--store", soda["store"], "--json")
    assert r.code == 0, r.err
    summary = r.json()
    assert summary["method"] == "dpo" and summary["steps"] == 8 and summary["variant"] == "SODA"
    record = json.loads((out / "distillc_train.json").read_text())
    losses, margins = record["losses"], record["margins"]
    assert len(losses) == len(margins) == 8 and all(math.isfinite(x) for x in losses + margins)
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 and losses[-1] < losses[0]
    assert margins[0] == 0.0 and sum(margins[-3:]) / 3 > sum(margins[1:4]) / 3 > 0
    assert record["dpo"] == {"loss_type": ["sigmoid", "sft"], "beta": 0.1, "loss_weights": [1.0, 1.0]}
    assert record["corpus"] == "soda-train" and record["data"]["format"] == "preference"
    assert (out / "model.safetensors").is_file()


def test_the_reference_model_is_the_student_as_given(soda, tiny_model_dir, tmp_path):
    from trainers.config import SFTRunConfig

    run = prepare(str(soda["export"]), student=str(tiny_model_dir), out_dir=tmp_path,
                  config=SFTRunConfig.from_preset("soda-dpo", max_steps=1))
    policy, reference = run.trainer.model, run.trainer.ref_model
    assert reference is not None and reference is not policy
    assert all(torch.equal(a, b) for a, b in zip(policy.state_dict().values(), reference.state_dict().values()))
    assert run.trainer.args.learning_rate == 1e-6 and run.trainer.args.loss_type == LOSS["loss_type"]
    lora = prepare(str(soda["export"]), student=str(tiny_model_dir), out_dir=tmp_path, lora=True,
                   config=SFTRunConfig.from_preset("soda-dpo", max_steps=1))
    assert lora.trainer.ref_model is None        # the adapter switched off is the student as given


def test_load_from_disk_of_the_export_goes_into_dpo_trainer_as_it_is(soda, tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    data = datasets.load_from_disk(str(soda["export"]))
    assert {"prompt", "chosen", "rejected"} <= set(data.column_names) and "completion" not in data.column_names
    trainer = DPOTrainer(model=AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)),
                         processing_class=AutoTokenizer.from_pretrained(str(tiny_model_dir)), train_dataset=data,
                         args=DPOConfig(output_dir=str(tmp_path), max_steps=2, per_device_train_batch_size=2,
                                        loss_type=["sigmoid", "sft"], loss_weights=[1.0, 1.0], report_to=[],
                                        save_strategy="no", use_cpu=True, logging_steps=1, disable_tqdm=True))
    trainer.train()
    assert all(math.isfinite(e["loss"]) for e in trainer.state.log_history if "loss" in e)


def test_lora_dpo_saves_a_merged_model(soda, tiny_model_dir, tmp_path):
    out = tmp_path / "model"
    r = run_cli("train", f"{soda['export']}", "--method", "dpo", "--lora", "--student", tiny_model_dir, "--out", out,
                "--config", soda["config"], "--max-steps", "2")
    assert r.code == 0, r.err
    assert (out / "adapter").is_dir() and json.loads((out / "distillc_train.json").read_text())["config"]["lora"]


@pytest.mark.parametrize("argv,store,message", [
    (["soda-train:SODA-sft", "--method", "dpo"], "store", "holds no preference pairs (prompt/chosen/rejected)"),
    (["soda-nopairs:SODA", "--method", "dpo"], "nopairs", "soda-nopairs@1 has no variant 'SODA'"),
    (["soda-nopairs", "--method", "dpo"], "nopairs", "soda-nopairs@1 holds no training records"),
    (["soda-train:SODA"], "store", "holds preference pairs (prompt/chosen/rejected): that is DPO data"),
])
def test_preference_training_needs_pairs(soda, tiny_model_dir, tmp_path, argv, store, message):
    out = tmp_path / "model"
    r = run_cli("train", *argv, "--student", tiny_model_dir, "--out", out, "--store", soda[store])
    assert r.code == 1 and len(r.err.strip().splitlines()) == 1 and message in r.err, r.err
    assert not out.exists()


@pytest.mark.parametrize("argv,message", [
    (["--variant", "SODA"], "has no variant 'SODA'"),
    ([], "soda-nopairs@1 holds no training records: every row was dropped"),       # not an empty dataset
    (["--format", "jsonl"], "holds no training records"),
])
def test_a_preference_export_of_a_corpus_without_pairs_writes_nothing(soda, tmp_path, argv, message):
    r = run_cli("export", "soda-nopairs", tmp_path / "out", *argv, "--store", soda["nopairs"])
    assert r.code == 1 and len(r.err.strip().splitlines()) == 1 and message in r.err, r.err
    assert not (tmp_path / "out").exists() and not list(tmp_path.iterdir())


def test_the_soda_dpo_config_file(tmp_path):
    spec = load_spec(ROOT / "trainers" / "configs" / "soda-dpo.yaml", "dpo")
    assert spec.config.preset == "soda-dpo" and spec.variant == "SODA" and spec.student and spec.out_dir
    assert spec.config.sft_args == {"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, 1.0], "beta": 0.1}
    typo = tmp_path / "typo.yaml"
    typo.write_text("preset: soda-dpo\nbetta: 0.2\n")
    with pytest.raises(ConfigError, match=r"typo.yaml:2 betta: unknown setting \(did you mean 'beta'\?\)"):
        load_spec(typo, "dpo")
    with pytest.raises(ConfigError, match="unknown setting"):
        load_spec(typo, "sft")


def test_a_dpo_config_file_without_a_preset_starts_from_soda_dpo(tmp_path):
    plain = tmp_path / "plain.yaml"
    plain.write_text("max_steps: 4\nbeta: 0.2\n")
    dpo = load_spec(plain, "dpo").config
    assert (dpo.preset, dpo.learning_rate, dpo.max_steps, dpo.sft_args) == ("soda-dpo", 1e-6, 4, {"beta": 0.2})
    steps = tmp_path / "steps.yaml"
    steps.write_text("max_steps: 4\n")
    assert load_spec(steps, "sft").config.preset == "modern" and load_spec(steps, "sft").config.learning_rate == 2e-5
