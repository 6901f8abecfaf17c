"""Training the tiny random models for a few steps: learning, saving, reloading, the record, and the
labels TRL actually trains on (prompt tokens masked with -100)."""

from __future__ import annotations

import datasets
import pytest
import torch
from safetensors.torch import load_file

from compiler.store.db import Store
from compiler.store.versions import resolve
from evals.generate import generate
from evals.models import clear_loaded_models, load_model
from tests.tiny_models import ENDOFTEXT, IM_END
from tests.trainers.conftest import message_rows, pc_rows
from trainers.config import SFTRunConfig
from trainers.errors import TrainError
from trainers.record import read_record
from trainers.sft import fit, prepare, train

# A rate high enough for a randomly initialised model to learn visibly in a few steps.
FAST = SFTRunConfig(learning_rate=5e-3, lr_scheduler_type="constant", warmup_steps=0,
                    per_device_train_batch_size=4, gradient_accumulation_steps=1, max_steps=6,
                    max_length=512)


def weights(directory) -> dict[str, torch.Tensor]:
    return load_file(str(directory / "model.safetensors"))


def changed(before: dict, after: dict) -> set[str]:
    return {k for k in before if not torch.equal(before[k], after[k])}


def first_batch(run) -> dict[str, torch.Tensor]:
    return next(iter(run.trainer.get_train_dataloader()))


def trained_and_masked(tokenizer, batch) -> list[tuple[str, str]]:
    """Per row: (text of the tokens with label -100, excluding padding; text of the trained tokens)."""
    rows = []
    for ids, labels, mask in zip(batch["input_ids"], batch["labels"], batch["attention_mask"]):
        real = mask.bool()
        rows.append((tokenizer.decode(ids[real & (labels == -100)]), tokenizer.decode(ids[labels != -100])))
    return rows


def test_training_learns_saves_and_records_the_corpus_version(corpus, tiny_model_dir, tmp_path):
    out = tmp_path / "student"
    result = train(str(corpus.export), student=str(tiny_model_dir), out_dir=out, config=FAST)
    assert result.steps == 6 and len(result.losses) == 6
    assert sum(result.losses[-2:]) / 2 < 0.8 * sum(result.losses[:2]) / 2
    assert changed(weights(tiny_model_dir), weights(out))  # the parameters moved

    record = read_record(out)
    with Store.open_readonly(corpus.store) as store:
        version = resolve(store, corpus.name)
    assert (record["corpus"], record["version"], record["fingerprint"]) == (
        version.corpus, version.version, version.fingerprint)
    assert record["variant"] == "StanD" and record["recipe"]["name"] == corpus.name
    assert record["steps"] == 6 and record["train_loss"] == pytest.approx(result.train_loss)
    assert record["config"]["learning_rate"] == 5e-3 and record["config"]["lora"] is False
    assert {"torch", "transformers", "trl", "datasets"} <= set(record["library_versions"])
    assert record["data"]["rows"] == version.rows and record["data"]["chat_template"] is True
    assert record["student"] == str(tiny_model_dir) and record["seconds"] > 0

    clear_loaded_models()
    model, tokenizer = load_model(str(out))
    [gen] = generate(model, tokenizer, [[{"role": "user", "content": "Return the square of n."}]],
                     max_new_tokens=12)
    assert gen.completion_tokens > 0 and gen.prompt_tokens > 0


def test_chat_student_trains_only_on_the_assistant_turn(tiny_model_dir, tmp_path):
    rows = pc_rows(4)
    run = prepare(datasets.Dataset.from_list(rows), student=str(tiny_model_dir), out_dir=tmp_path,
                  config=FAST)
    assert run.chat is True
    expected = {run.tokenizer.apply_chat_template([{"role": "user", "content": r["prompt"]}],
                                                  tokenize=False, add_generation_prompt=True):
                r["completion"] + IM_END + "\n" for r in rows}
    seen = trained_and_masked(run.tokenizer, first_batch(run))
    assert len(seen) == 4
    for masked, trained in seen:
        assert masked.endswith("<|im_start|>assistant\n")
        assert expected[masked] == trained


def test_plain_student_trains_on_the_completion_and_eos(tiny_base_model_dir, tmp_path):
    rows = pc_rows(4)
    run = prepare(datasets.Dataset.from_list(rows), student=str(tiny_base_model_dir), out_dir=tmp_path,
                  config=FAST)
    assert run.chat is False
    expected = {r["prompt"]: r["completion"] + ENDOFTEXT for r in rows}
    for masked, trained in trained_and_masked(run.tokenizer, first_batch(run)):
        assert "<|im_start|>" not in masked
        assert expected[masked] == trained


def test_chat_false_trains_a_chat_student_on_plain_text(tiny_model_dir, tmp_path):
    rows = pc_rows(4)
    run = prepare(datasets.Dataset.from_list(rows), student=str(tiny_model_dir), out_dir=tmp_path,
                  config=FAST.replace(chat=False))
    masked = [m for m, _ in trained_and_masked(run.tokenizer, first_batch(run))]
    assert sorted(masked) == sorted(r["prompt"] for r in rows)


def test_chat_true_needs_a_template(tiny_base_model_dir, tmp_path):
    with pytest.raises(TrainError, match="has no chat template"):
        prepare(datasets.Dataset.from_list(pc_rows(2)), student=str(tiny_base_model_dir),
                out_dir=tmp_path, config=FAST.replace(chat=True))


def test_messages_train_on_the_final_assistant_message(tiny_model_dir, tmp_path):
    rows = message_rows(4)
    run = prepare(datasets.Dataset.from_list(rows), student=str(tiny_model_dir), out_dir=tmp_path,
                  config=FAST)
    answers = {r["messages"][2]["content"] + IM_END + "\n" for r in rows}
    for masked, trained in trained_and_masked(run.tokenizer, first_batch(run)):
        assert "You write short Python." in masked and "Return n times" in masked
        assert trained in answers


def test_completion_only_loss_can_be_switched_off(tiny_base_model_dir, tmp_path):
    run = prepare(datasets.Dataset.from_list(pc_rows(4)), student=str(tiny_base_model_dir),
                  out_dir=tmp_path, config=FAST.replace(completion_only_loss=False))
    batch = first_batch(run)
    real = batch["attention_mask"].bool()
    assert bool((batch["labels"][real] != -100).all())


def test_lora_trains_an_adapter_and_saves_a_merged_model(tiny_model_dir, tmp_path):
    out = tmp_path / "lora"
    config = FAST.replace(learning_rate=2e-2, max_steps=4, lora_r=4, lora_alpha=8)
    result = train(datasets.Dataset.from_list(pc_rows(8)), student=str(tiny_model_dir), out_dir=out,
                   config=config, lora=True)
    assert (out / "adapter" / "adapter_config.json").is_file() and (out / "config.json").is_file()
    assert result.losses[-1] < result.losses[0]
    moved = changed(weights(tiny_model_dir), weights(out))
    assert any("q_proj" in k for k in moved)
    assert not any("embed_tokens" in k or "norm" in k for k in moved)  # only adapted layers move
    assert read_record(out)["config"]["lora"] is True
    assert read_record(out)["corpus"] is None  # not from a corpus: no invented provenance


def test_retraining_into_the_same_directory_replaces_the_record_and_adapter(tiny_model_dir, tmp_path):
    data = datasets.Dataset.from_list(pc_rows(4))
    train(data, student=str(tiny_model_dir), out_dir=tmp_path, config=FAST.replace(max_steps=1),
          provenance={"corpus": "a", "version": 1}, lora=True)
    assert (tmp_path / "adapter").is_dir()
    train(data, student=str(tiny_model_dir), out_dir=tmp_path, config=FAST.replace(max_steps=2),
          provenance={"corpus": "b", "version": 3})
    record = read_record(tmp_path)
    assert (record["corpus"], record["version"], record["steps"]) == ("b", 3, 2)
    assert not (tmp_path / "adapter").exists() and record["config"]["lora"] is False


def test_an_unknown_student_fails_in_one_line(tmp_path):
    with pytest.raises(TrainError, match="no such directory") as info:
        prepare(datasets.Dataset.from_list(pc_rows(2)), student=str(tmp_path / "none"), out_dir=tmp_path)
    assert "\n" not in str(info.value)


def test_a_bad_pass_through_setting_fails_in_one_line(tiny_model_dir, tmp_path):
    with pytest.raises(TrainError, match="invalid training settings"):
        prepare(datasets.Dataset.from_list(pc_rows(2)), student=str(tiny_model_dir), out_dir=tmp_path,
                config=FAST.replace(sft_args={"lr_scheduler_type": "zigzag"}))


@pytest.mark.slow
def test_embedded_student_takes_a_step_through_its_chat_template(corpus, embedded_model_dir, tmp_path):
    out = tmp_path / "smol"
    config = SFTRunConfig(max_steps=1, per_device_train_batch_size=1, gradient_accumulation_steps=1,
                          max_length=256, warmup_steps=0)
    run = prepare(str(corpus.export), student=str(embedded_model_dir), out_dir=out, config=config)
    masked, trained = trained_and_masked(run.tokenizer, first_batch(run))[0]
    assert masked.endswith("<|im_start|>assistant\n") and trained.endswith("```<|im_end|>\n")
    result = fit(run)
    assert result.steps == 1 and 0 < result.train_loss < 20
    assert changed(weights(embedded_model_dir), weights(out))
    assert read_record(out)["data"]["chat_template"] is True
