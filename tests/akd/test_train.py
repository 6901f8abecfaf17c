"""``distillc train --method kd`` on a tiny teacher/student pair (random models sharing one tokenizer):
every loss trains and brings the student closer to the teacher on held-out completions, the run record
names the loss, and bad input fails in one line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import datasets
import pytest
import torch
import torch.nn.functional as F

from compiler.methods.akd.templates import PLAIN_COMPLETION, render, task_fields
from tests.akd.conftest import ScriptedTeacher, akd_recipe
from tests.compiler.conftest import run_cli, starter_tasks
from tests.loopback import LoopbackServer
from tests.tiny_models import build_model, build_tokenizer, save_tiny_model
from trainers.record import read_record

FAST = ("--max-steps", "8")
HELD_OUT = starter_tasks()[26:33]


@pytest.fixture(autouse=True, scope="module")
def _no_dataset_bars():
    """As ``distillc`` run with progress off, from a fresh process: ``datasets`` was imported before
    the CLI could tell it to hide its bars, and one-line errors are checked on stderr."""
    from transformers.utils import logging

    datasets.disable_progress_bars()
    logging.disable_progress_bar()
    yield
    datasets.enable_progress_bars()
    logging.enable_progress_bar()


def quick_config(tmp_path: Path) -> Path:
    path = tmp_path / "kd.yaml"
    path.write_text("learning_rate: 5.0e-3\nlr_scheduler_type: constant\nwarmup_steps: 0\n"
                    "per_device_train_batch_size: 4\ngradient_accumulation_steps: 1\nmax_length: 256\n")
    return path


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> tuple[Path, Path]:
    """(student, teacher): two tiny chat models, different random weights, one tokenizer."""
    root = tmp_path_factory.mktemp("pair")
    return save_tiny_model(root / "student", chat=True, seed=0), save_tiny_model(root / "teacher", chat=True, seed=7)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """An AKD corpus of 20 starter tasks (+2 Alpaca rows) compiled against a scripted teacher."""
    os.environ.setdefault("OPENAI_API_KEY", "test-key")
    directory = tmp_path_factory.mktemp("akd-corpus")
    teacher = ScriptedTeacher()
    teacher.refs.update({t["instruction"]: (t["task_id"], t["reference_solution"]) for t in starter_tasks(20)})
    with LoopbackServer(answer=teacher) as server:
        recipe = akd_recipe(directory, server.url, limit=20)
        r = run_cli("compile", recipe, "--store", directory / "store.duckdb", "--json")
    assert r.code == 0, r.err
    return directory / "store.duckdb"


def heldout_kl(student: Path, teacher: Path) -> float:
    """Mean KL(teacher ‖ student) per completion token of held-out tasks (the plain AKD prompt and the
    reference solution, as a chat turn), computed here with torch's own kl_div."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(teacher)
    models = [AutoModelForCausalLM.from_pretrained(p).eval() for p in (student, teacher)]
    total, count = 0.0, 0
    for task in HELD_OUT:
        prompt = render(PLAIN_COMPLETION, task_fields(task))
        head = tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                       tokenize=False)
        p_ids = tok(head, add_special_tokens=False)["input_ids"]
        c_ids = tok(task["reference_solution"], add_special_tokens=False)["input_ids"]
        ids = torch.tensor([p_ids + c_ids])
        with torch.no_grad():
            logq, logp = (torch.log_softmax(m(input_ids=ids).logits[0, len(p_ids) - 1:-1].float(), -1) for m in models)
        total += float(F.kl_div(logq, logp, log_target=True, reduction="sum"))
        count += len(c_ids)
    return total / count


@pytest.mark.parametrize("loss, extra", [
    ("fkl", ()), ("rkl", ()), ("jsd", ("--beta", "0.5")), ("skl", ("--alpha", "0.1")),
    ("srkl", ("--alpha", "0.1")), ("akl", ("--mu", "0.5")),
])
def test_each_loss_brings_the_student_closer_to_the_teacher(loss, extra, corpus, pair, tmp_path):
    student, teacher = pair
    out = tmp_path / "m"
    r = run_cli("train", "akd-test:AKD", "--method", "kd", "--teacher", teacher, "--loss", loss, *extra,
                "--student", student, "--out", out, "--config", quick_config(tmp_path), "--store", corpus,
                "--json", *FAST)
    assert r.code == 0, r.err
    summary = r.json()
    assert summary["method"] == "kd" and summary["loss"] == loss and summary["steps"] == 8
    record = read_record(out)
    assert record["method"] == "kd" and record["teacher"] == str(teacher)
    kd = record["kd"]
    assert kd["loss"] == loss and (kd["mu"], kd["beta"], kd["alpha"]) == (0.5, 0.5, 0.1)
    assert kd["lmbda"] == 0.0 and kd["teacher_from"] == "model" and kd["rows_used"] == 20
    assert record["corpus"] == "akd-test" and record["variant"] == "AKD"
    before, after = heldout_kl(student, teacher), heldout_kl(out, teacher)
    assert after < 0.9 * before, (before, after)


def test_teacher_scores_its_own_prompt(corpus, pair, tmp_path):
    """teacher_logits_on: teacher_prompt — the teacher's inputs are its enhanced prompt followed by the
    very completion ids the student trains on, ending in the same column."""
    from trainers.akd import KDSettings, prepare
    from trainers.config import SFTRunConfig
    from tests.akd.conftest import ALPACA  # noqa: F401  (the corpus's Alpaca rows are in it)

    student, teacher = pair
    export = tmp_path / "export"
    assert run_cli("export", "akd-test", export, "--store", corpus).code == 0
    run = prepare(str(export), student=str(student), out_dir=tmp_path / "m",
                  kd=KDSettings(teacher=str(teacher), teacher_logits_on="teacher_prompt"),
                  config=SFTRunConfig(per_device_train_batch_size=4, max_steps=1))
    batch = next(iter(run.trainer.get_train_dataloader()))
    tok = run.tokenizer
    for ids, labels, t_ids in zip(batch["input_ids"], batch["labels"], batch["teacher_input_ids"]):
        n = int((labels != -100).sum())
        assert torch.equal(ids[-n:], t_ids[-n:])
        assert "# Task:" in tok.decode(t_ids[:-n]) and "# Task:" not in tok.decode(ids[:-n])
    loss = run.trainer.compute_loss(run.trainer.model, batch)
    assert torch.isfinite(loss) and float(loss) > 0


def test_a_teacher_equal_to_the_student_gives_zero_loss(corpus, pair, tmp_path):
    """Alignment check: the same weights on the same inputs — every position's divergence is 0."""
    from trainers.akd import KDSettings, prepare
    from trainers.config import SFTRunConfig

    student, _ = pair
    export = tmp_path / "export"
    assert run_cli("export", "akd-test", export, "--store", corpus).code == 0
    run = prepare(str(export), student=str(student), out_dir=tmp_path / "m", kd=KDSettings(teacher=str(student)),
                  config=SFTRunConfig(per_device_train_batch_size=4, max_steps=1))
    batch = next(iter(run.trainer.get_train_dataloader()))
    run.trainer.model.eval()
    assert float(run.trainer.compute_loss(run.trainer.model, batch)) == pytest.approx(0.0, abs=1e-6)


def test_lora_adapter_is_merged_into_the_saved_student(corpus, pair, tmp_path):
    student, teacher = pair
    r = run_cli("train", "akd-test:AKD", "--method", "kd", "--teacher", teacher, "--lora", "--student", student,
                "--out", tmp_path / "m", "--config", quick_config(tmp_path), "--store", corpus, "--max-steps", "2")
    assert r.code == 0, r.err
    assert (tmp_path / "m" / "adapter").is_dir() and read_record(tmp_path / "m")["config"]["lora"] is True
    assert (tmp_path / "m" / "model.safetensors").is_file()


def test_on_policy_batches_run(corpus, pair, tmp_path):
    student, teacher = pair
    config = quick_config(tmp_path)
    config.write_text(config.read_text() + "max_new_tokens: 8\n")
    r = run_cli("train", "akd-test:AKD", "--method", "kd", "--teacher", teacher, "--lmbda", "1", "--student",
                student, "--out", tmp_path / "m", "--config", config, "--store", corpus, "--max-steps", "2")
    assert r.code == 0, r.err
    assert read_record(tmp_path / "m")["kd"]["lmbda"] == 1.0 and "kd akl from" in r.out


# ---------------------------------------------------------------------------------------------
# bad input


@pytest.fixture(scope="module")
def wide_teacher(tmp_path_factory) -> Path:
    """A tiny teacher whose vocabulary has 64 more entries than the student's."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = build_tokenizer(chat=True)
    base = build_model(tok)
    config = LlamaConfig(**{**base.config.to_dict(), "vocab_size": len(tok) + 64})
    directory = tmp_path_factory.mktemp("wide")
    LlamaForCausalLM(config).save_pretrained(directory)
    tok.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def odd_variants(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("variants") / "d"
    datasets.DatasetDict({
        "pairs": datasets.Dataset.from_list([{"prompt": "p", "chosen": "a", "rejected": "b"}] * 2),
        "prompts": datasets.Dataset.from_list([{"prompt": "p", "task_id": "t"}] * 2),
        "nulls": datasets.Dataset.from_list([{"prompt": "p", "completion": None, "task_id": "t"}] * 2),
    }).save_to_disk(str(directory))
    return directory


def bad(argv, corpus, pair, tmp_path, *, teacher: bool = True):
    student, tiny_teacher = pair
    out = tmp_path / "m"
    extra = ["--teacher", str(tiny_teacher)] if teacher and "--teacher" not in argv else []
    r = run_cli("train", *argv, "--method", "kd", *extra, "--student", student, "--out", out, "--store", corpus,
                "--max-steps", "1")
    assert r.code == 1 and len(r.err.strip().splitlines()) == 1 and r.out == "", r.err
    assert not (out / "distillc_train.json").exists()
    return r.err


@pytest.mark.parametrize("argv, message", [
    (["akd-test:AKD", "--loss", "kl"], "unknown loss 'kl' (losses: fkl, rkl, jsd, skl, srkl, akl)"),
    (["akd-test:AKD", "--mu", "0"], "mu must be in (0, 1], got 0.0"),
    (["akd-test:AKD", "--mu", "1.5"], "mu must be in (0, 1], got 1.5"),
    (["akd-test:AKD", "--beta", "2"], "beta must be in [0, 1], got 2.0"),
    (["akd-test:AKD", "--teacher-from", "corpus"], "has no teacher_topk values, which teacher_from: corpus"),
    (["akd-test:AKD", "--teacher-from", "corpus", "--lmbda", "0.5"], "lmbda > 0 samples from the student"),
])
def test_bad_settings_fail_in_one_line(argv, message, corpus, pair, tmp_path):
    assert message in bad(argv, corpus, pair, tmp_path)


def test_a_teacher_with_another_vocabulary_fails_before_any_step(corpus, pair, wide_teacher, tmp_path):
    err = bad(["akd-test:AKD", "--teacher", str(wide_teacher)], corpus, pair, tmp_path)
    assert "has a vocabulary of 1088 tokens and the student" in err and "one of 1024" in err


def test_variants_without_completions_fail_in_one_line(odd_variants, corpus, pair, tmp_path):
    assert "has no completions to train on" in bad([f"{odd_variants}:prompts"], corpus, pair, tmp_path)
    assert "has no completions to train on" in bad([f"{odd_variants}:nulls"], corpus, pair, tmp_path)
    assert "that is DPO data, not KD data" in bad([f"{odd_variants}:pairs"], corpus, pair, tmp_path)


def test_kd_flags_need_method_kd(corpus, pair, tmp_path):
    student, teacher = pair
    r = run_cli("train", "akd-test:AKD", "--loss", "akl", "--student", student, "--out", tmp_path / "m",
                "--store", corpus)
    assert r.code == 1 and "--loss: only with --method kd" in r.err


def test_a_run_file_carries_the_kd_settings(corpus, pair, tmp_path):
    student, teacher = pair
    config = quick_config(tmp_path)
    config.write_text(config.read_text() + f"teacher_model_name_or_path: {teacher}\nloss: jsd\nbeta: 0.3\n"
                      f"model_name_or_path: {student}\noutput_dir: {tmp_path / 'm'}\nvariant: AKD\n")
    r = run_cli("train", "akd-test", "--method", "kd", "--config", config, "--store", corpus, "--max-steps", "1",
                "--json")
    assert r.code == 0, r.err
    kd = read_record(tmp_path / "m")["kd"]
    assert (kd["loss"], kd["beta"], kd["teacher"]) == ("jsd", 0.3, str(teacher))
    config.write_text(config.read_text() + "mu: lots\n")
    r = run_cli("train", "akd-test", "--method", "kd", "--config", config, "--store", corpus)
    assert r.code == 1 and f"{config}:" in r.err and "mu: expected a number" in r.err
    assert json.loads(json.dumps(kd))    # the record is plain JSON
