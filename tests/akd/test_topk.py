"""Distillation from the teacher's top-k log-probabilities captured at compile time: a loopback server
plays the tiny teacher (its answers' log-probabilities are the tiny teacher model's own), the corpus
keeps them, and ``--teacher-from corpus`` trains the student without loading any teacher."""

from __future__ import annotations

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
from tests.tiny_models import save_tiny_model
from trainers.record import read_record

K = 20
HELD_OUT = starter_tasks()[26:33]


class TinyTeacherLogprobs:
    """The loopback's ``logprobs``: the tiny teacher's top-k at each token of the answer, after the
    prompt it was asked with, token texts as a server sends them (decoded)."""

    def __init__(self, directory: Path):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tok = AutoTokenizer.from_pretrained(directory)
        self.model = AutoModelForCausalLM.from_pretrained(directory).eval()

    def __call__(self, body, text, k):
        p_ids = self.tok(body["prompt"])["input_ids"]
        c_ids = self.tok(text, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = self.model(input_ids=torch.tensor([p_ids + c_ids])).logits[0, len(p_ids) - 1:-1]
        logp = torch.log_softmax(logits.float(), -1)
        top = logp.topk(k, -1)
        word = lambda i: self.tok.decode([int(i)])  # noqa: E731
        return [(word(c), float(logp[j, c]), [(word(a), float(v)) for a, v in zip(top.indices[j], top.values[j])])
                for j, c in enumerate(c_ids)]


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("base-pair")
    return save_tiny_model(root / "student", chat=False, seed=0), save_tiny_model(root / "teacher", chat=False, seed=7)


@pytest.fixture(scope="module")
def topk_corpus(tmp_path_factory, models) -> Path:
    os.environ.setdefault("OPENAI_API_KEY", "test-key")
    directory = tmp_path_factory.mktemp("topk-corpus")
    teacher = ScriptedTeacher()
    teacher.refs.update({t["instruction"]: (t["task_id"], t["reference_solution"]) for t in starter_tasks(20)})
    with LoopbackServer(answer=teacher, logprobs=TinyTeacherLogprobs(models[1])) as server:
        recipe = akd_recipe(directory, server.url, limit=20, name="akd-topk", teacher_with=f"top_logprobs: {K}")
        r = run_cli("compile", recipe, "--store", directory / "store.duckdb", "--json")
    assert r.code == 0, r.err
    return directory / "store.duckdb"


def heldout_kl(student: Path, teacher: Path) -> float:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(teacher)
    nets = [AutoModelForCausalLM.from_pretrained(p).eval() for p in (student, teacher)]
    total, count = 0.0, 0
    for task in HELD_OUT:
        p_ids = tok(render(PLAIN_COMPLETION, task_fields(task)))["input_ids"]
        c_ids = tok(task["reference_solution"], add_special_tokens=False)["input_ids"]
        ids = torch.tensor([p_ids + c_ids])
        with torch.no_grad():
            logq, logp = (torch.log_softmax(m(input_ids=ids).logits[0, len(p_ids) - 1:-1].float(), -1) for m in nets)
        total += float(F.kl_div(logq, logp, log_target=True, reduction="sum"))
        count += len(c_ids)
    return total / count


def test_the_corpus_keeps_the_teachers_top_k(topk_corpus, tmp_path):
    out = tmp_path / "export"
    assert run_cli("export", "akd-topk", out, "--store", topk_corpus).code == 0
    rows = datasets.load_from_disk(str(out))
    row = rows[0]
    topk = row["teacher_topk"]
    assert "".join(topk["token"]) == row["completion"]
    # the text endpoint keys alternatives by their text, so two that decode alike count once
    sizes = [len(t) for t in topk["top_token"]]
    assert all(1 <= n <= K for n in sizes) and max(sizes) == K
    assert topk["top_logprob"][0][0] >= topk["top_logprob"][0][1]


@pytest.mark.parametrize("loss", ["fkl", "akl"])
def test_teacher_from_corpus_trains_without_loading_the_teacher(loss, topk_corpus, models, tmp_path, monkeypatch):
    import trainers.akd

    def refuse(*args, **kwargs):
        raise AssertionError("the teacher was loaded")

    monkeypatch.setattr(trainers.akd, "load_teacher", refuse)
    datasets.disable_progress_bars()
    student, teacher = models
    config = tmp_path / "kd.yaml"
    config.write_text("learning_rate: 5.0e-3\nlr_scheduler_type: constant\nwarmup_steps: 0\n"
                      "per_device_train_batch_size: 4\ngradient_accumulation_steps: 1\nmax_length: 256\n")
    out = tmp_path / "m"
    r = run_cli("train", "akd-topk:AKD", "--method", "kd", "--teacher-from", "corpus", "--loss", loss,
                "--student", student, "--out", out, "--config", config, "--store", topk_corpus, "--max-steps", "8")
    assert r.code == 0, r.err
    assert f"kd {loss} from the corpus top-k" in r.out
    record = read_record(out)
    assert record["teacher"] is None and record["kd"]["teacher_from"] == "corpus" and record["kd"]["loss"] == loss
    assert record["kd"]["rows_used"] == 20 and record["kd"]["rows_skipped"] == 0
    assert record["teacher_source"] is None
    before, after = heldout_kl(student, teacher), heldout_kl(out, teacher)
    assert after < 0.9 * before, (before, after)


def test_a_named_teacher_is_recorded_though_not_loaded(topk_corpus, models, tmp_path, monkeypatch):
    """The teacher behind the captured top-k is named in the record (``distillc report`` sets the
    student against it) while nothing of it is loaded."""
    import trainers.akd

    def refuse(*args, **kwargs):
        raise AssertionError("the teacher was loaded")

    monkeypatch.setattr(trainers.akd, "load_teacher", refuse)
    datasets.disable_progress_bars()
    student, _ = models
    out = tmp_path / "m"
    r = run_cli("train", "akd-topk:AKD", "--method", "kd", "--teacher-from", "corpus", "--teacher", "starcoder-7b",
                "--student", student, "--out", out, "--store", topk_corpus, "--max-steps", "1", "--json")
    assert r.code == 0, r.err
    assert r.json()["teacher"] == "starcoder-7b" and r.json()["teacher_from"] == "corpus"
    record = read_record(out)
    assert record["teacher"] == "starcoder-7b" and record["teacher_source"] is None
