"""`distillc train` and `python -m trainers.sft --config FILE`: corpus refs, dataset directories,
config files, and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import datasets
import pytest

from tests.compiler.conftest import run_cli
from tests.trainers.conftest import pc_rows
from trainers.record import read_record

ROOT = Path(__file__).resolve().parents[2]
QUICK = ("--max-steps", "2")


def quick_config(tmp_path: Path, **extra: str) -> Path:
    """A small-batch config so the tiny model's steps are quick."""
    lines = {"per_device_train_batch_size": "4", "gradient_accumulation_steps": "1",
             "max_length": "256", **extra}
    path = tmp_path / "quick.yaml"
    path.write_text("".join(f"{k}: {v}\n" for k, v in lines.items()))
    return path


def test_train_a_corpus_version_by_reference(corpus, tiny_model_dir, tmp_path):
    out = tmp_path / "m"
    r = run_cli("train", f"{corpus.name}@{corpus.version}:StanD", "--student", tiny_model_dir, "--out", out,
                "--config", quick_config(tmp_path), "--store", corpus.store, "--json", *QUICK)
    assert r.code == 0, r.err
    summary = r.json()
    assert (summary["corpus"], summary["version"], summary["fingerprint"]) == (
        corpus.name, corpus.version, corpus.fingerprint)
    assert summary["variant"] == "StanD" and summary["steps"] == 2 and summary["out"] == str(out)
    record = read_record(out)
    assert record["data"]["source"] == f"{corpus.name}@{corpus.version}:StanD"
    assert record["config"]["per_device_train_batch_size"] == 4 and record["config"]["max_steps"] == 2
    assert (out / "config.json").is_file() and (out / "tokenizer_config.json").is_file()


def test_train_an_export_directory_human_output(corpus, tiny_base_model_dir, tmp_path):
    out = tmp_path / "m"
    r = run_cli("train", corpus.export, "--student", tiny_base_model_dir, "--out", out,
                "--config", quick_config(tmp_path), *QUICK)
    assert r.code == 0, r.err
    assert f"on {corpus.name}@{corpus.version} (StanD): 2 steps" in r.out and str(out) in r.out
    assert read_record(out)["data"]["chat_template"] is False


@pytest.fixture
def two_variants(tmp_path) -> Path:
    d = tmp_path / "two"
    datasets.DatasetDict({"PERsD": datasets.Dataset.from_list(pc_rows(4, "PERsD")),
                          "StanD": datasets.Dataset.from_list(pc_rows(4, "StanD"))}).save_to_disk(str(d))
    return d


def test_directory_with_variants(two_variants, tiny_model_dir, tmp_path):
    bare = run_cli("train", two_variants, "--student", tiny_model_dir, "--out", tmp_path / "m", *QUICK)
    assert bare.code == 1 and "several variants (PERsD, StanD)" in bare.err
    picked = run_cli("train", f"{two_variants}:PERsD", "--student", tiny_model_dir, "--out", tmp_path / "m",
                     "--config", quick_config(tmp_path), "--json", *QUICK)
    assert picked.code == 0, picked.err
    assert picked.json()["variant"] == "PERsD" and picked.json()["rows"] == 4


def test_lora_flag_and_config_file_values(corpus, tiny_model_dir, tmp_path):
    config = quick_config(tmp_path, lora_r="4", lora_alpha="8")
    r = run_cli("train", corpus.export, "--student", tiny_model_dir, "--out", tmp_path / "m",
                "--config", config, "--lora", *QUICK)
    assert r.code == 0, r.err
    record = read_record(tmp_path / "m")
    assert record["config"]["lora"] is True and record["config"]["lora_r"] == 4
    assert (tmp_path / "m" / "adapter").is_dir()


@pytest.mark.parametrize("argv, message", [
    (["train-test@9"], "train-test has no version 9"),
    (["nothing-here"], "unknown corpus 'nothing-here'"),
    (["train-test:InpD"], "has no variant 'InpD'"),
    (["./no/such/dir"], "no such dataset directory"),
    (["train-test", "--max-steps", "0"], "--max-steps: expected a positive number"),
])
def test_bad_targets_fail_in_one_line(corpus, tiny_model_dir, tmp_path, argv, message):
    out = tmp_path / "m"
    r = run_cli("train", *argv, "--student", tiny_model_dir, "--out", out, "--store", corpus.store)
    assert r.code == 1 and message in r.err
    assert len(r.err.strip().splitlines()) == 1 and r.out == ""
    assert not (out / "distillc_train.json").exists()


def test_bad_config_and_student_fail_in_one_line(corpus, tiny_model_dir, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("learning_rate: 1e-5\nepochs: 3\n")
    r = run_cli("train", corpus.export, "--student", tiny_model_dir, "--out", tmp_path / "m", "--config", bad)
    assert r.code == 1 and f"{bad}:2 epochs: unknown setting" in r.err
    r = run_cli("train", corpus.export, "--student", tmp_path / "nope", "--out", tmp_path / "m")
    assert r.code == 1 and "no such directory" in r.err and len(r.err.strip().splitlines()) == 1
    r = run_cli("train", corpus.export, "--out", tmp_path / "m")
    assert r.code == 1 and "--student and --out are required" in r.err


def test_bad_thread_setting_is_a_usage_error(corpus, tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("DISTILLC_TORCH_THREADS", "many")
    r = run_cli("train", corpus.export, "--student", tiny_model_dir, "--out", tmp_path / "m")
    assert r.code == 1 and "DISTILLC_TORCH_THREADS='many'" in r.err


def run_module(*argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DISTILLC_TORCH_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "trainers.sft", *argv], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def test_python_module_runs_a_yaml_run_file(corpus, tiny_model_dir, tmp_path):
    out = tmp_path / "m"
    config = quick_config(tmp_path, model_name_or_path=str(tiny_model_dir), dataset_name=str(corpus.export),
                          output_dir=str(out), preset="persd-paper", max_steps="2")
    done = run_module("--config", str(config))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith("2 steps, train loss") and str(out) in done.stdout
    record = json.loads((out / "distillc_train.json").read_text())
    assert record["config"]["preset"] == "persd-paper" and record["config"]["learning_rate"] == 5e-6
    assert record["config"]["gradient_accumulation_steps"] == 480 and record["config"]["global_batch_size"] == 1920
    assert record["config"]["devices"] == 1
    assert record["fingerprint"] == corpus.fingerprint


def test_python_module_errors(tmp_path):
    config = quick_config(tmp_path, dataset_name="x")
    done = run_module("--config", str(config))
    assert done.returncode == 1
    assert done.stderr.strip() == f"trainers.sft: error: {config}: missing model_name_or_path, output_dir " \
                                  "(or the matching option)"
