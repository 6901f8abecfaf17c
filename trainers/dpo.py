"""Preference training of a student on an exported corpus with TRL's DPOTrainer: DPO plus an SFT term
on the chosen answer, the DPO-style stand-in for SODA's fault-aware contrastive loss (METHODS.md 3(e),
reading 1):

    L = w_sft · L_SFT(chosen)
      + w_dpo · −log σ(β · [(log π(chosen) − log π_ref(chosen)) − (log π(rejected) − log π_ref(rejected))])

which TRL computes with ``loss_type: [sigmoid, sft]`` and ``loss_weights: [w_dpo, w_sft]`` (defaults
``[1.0, 1.0]``, ``beta: 0.1``; any of them can be set in the config file). The reference model is
the student as given: a second copy of it, frozen (with LoRA, the base model under the adapter).
Everything else is as for SFT (:mod:`trainers.sft`): the student, its chat template, LoRA, saving, the
``distillc_train.json`` record, which here adds ``method: dpo``, the DPO settings and the
chosen-minus-rejected reward margin of every step (``margins``).

Library use::

    from trainers.dpo import train
    result = train("data/exports/soda", student="smollm2-135m", out_dir="data/runs/soda-dpo", variant="SODA")

Command line: ``distillc train CORPUS:SODA --method dpo`` (or a dataset directory); hyper-parameters
default to the ``soda-dpo`` preset (lr 1e-6, 3 epochs, max length 2048).
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from trainers.config import SFTRunConfig
from trainers.data import TrainingData, load_training_data, shape_preferences
from trainers.errors import TrainError
from trainers.record import forget_record, write_record
from trainers.sft import (ADAPTER_DIR, PreparedRun, TrainResult, build_record, devices, load_student, lora_config,
                          save_model, use_chat_template)

PRESET = "soda-dpo"
LOSS = {"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, 1.0], "beta": 0.1}


def default_config() -> SFTRunConfig:
    return SFTRunConfig.from_preset(PRESET)


def train(dataset: Any, *, student: str, out_dir: str | Path, config: SFTRunConfig | None = None,
          lora: bool = False, provenance: dict[str, Any] | None = None,
          variant: str | None = None) -> TrainResult:
    """Train ``student`` on the preference pairs of ``dataset`` (as :func:`trainers.sft.train` takes
    its SFT rows) and save the result into ``out_dir``."""
    return fit(prepare(dataset, student=student, out_dir=out_dir, config=config, lora=lora,
                       provenance=provenance, variant=variant))


def prepare(dataset: Any, *, student: str, out_dir: str | Path, config: SFTRunConfig | None = None,
            lora: bool = False, provenance: dict[str, Any] | None = None,
            variant: str | None = None) -> PreparedRun:
    """Everything before the first optimizer step."""
    config = (config or default_config()).resolved(devices())
    data = _preference_data(dataset, variant, provenance)
    model, tokenizer, source = load_student(student)
    reference = None if lora else load_student(student)[0]
    chat = use_chat_template(tokenizer, config.chat, student)
    rows = shape_preferences(data.dataset, chat=chat)
    out = Path(out_dir).expanduser().absolute()
    trainer = _trainer(model, reference, tokenizer, rows, dpo_config(config, out), config, lora)
    return PreparedRun(trainer, tokenizer, data, student, source, chat, config, lora, out)


def _preference_data(dataset: Any, variant: str | None, provenance: dict[str, Any] | None) -> TrainingData:
    if isinstance(dataset, TrainingData):
        if variant is not None:
            raise TrainError("variant: select it when loading the TrainingData, not afterwards")
        if dataset.format != "preference":
            raise TrainError(f"{dataset.source or 'the dataset'} holds no preference pairs (prompt/chosen/rejected) "
                             f"for DPO (columns: {', '.join(dataset.dataset.column_names)})")
        return TrainingData(dataset.dataset, {**dataset.provenance, **(provenance or {})}, dataset.source)
    return load_training_data(dataset, variant=variant, provenance=provenance, preference=True)


def dpo_config(config: SFTRunConfig, out_dir: Path) -> Any:
    """The ``trl.DPOConfig`` of a run: the shared hyper-parameters as for SFT, SODA's loss unless the
    config sets its own, no intermediate checkpoints."""
    import torch
    from trl import DPOConfig

    cuda = torch.cuda.is_available()
    values = {
        "output_dir": str(out_dir), "learning_rate": config.learning_rate,
        "num_train_epochs": config.num_train_epochs, "max_steps": config.max_steps,
        "per_device_train_batch_size": config.per_device_train_batch_size,
        "gradient_accumulation_steps": config.gradient_accumulation_steps,
        "lr_scheduler_type": config.lr_scheduler_type, "warmup_steps": config.warmup_steps,
        "weight_decay": config.weight_decay, "max_grad_norm": config.max_grad_norm,
        "max_length": config.max_length, "seed": config.seed, "logging_steps": config.logging_steps,
        "activation_checkpointing": config.gradient_checkpointing,
        "bf16": cuda and torch.cuda.is_bf16_supported(), "fp16": False,
        "save_strategy": "no", "report_to": "none", "dataloader_pin_memory": cuda, **LOSS,
    }
    try:
        return DPOConfig(**{**values, **config.sft_args})
    except (TypeError, ValueError) as exc:
        raise TrainError(f"invalid DPO settings: {_first_line(exc)}") from exc


def _trainer(model: Any, reference: Any, tokenizer: Any, rows: Any, args: Any, config: SFTRunConfig,
             lora: bool) -> Any:
    from trl import DPOTrainer

    with contextlib.redirect_stdout(sys.stderr):
        return DPOTrainer(model=model, ref_model=reference, args=args, train_dataset=rows,
                          processing_class=tokenizer, peft_config=lora_config(config) if lora else None)


def fit(run: PreparedRun) -> TrainResult:
    """Train, save the model, write the record (with each step's reward margin)."""
    run.out_dir.mkdir(parents=True, exist_ok=True)
    forget_record(run.out_dir)
    shutil.rmtree(run.out_dir / ADAPTER_DIR, ignore_errors=True)
    started = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):
        output = run.trainer.train()
    seconds = time.perf_counter() - started
    save_model(run)
    history = run.trainer.state.log_history
    losses = tuple(float(e["loss"]) for e in history if "loss" in e)
    margins = [float(e["rewards/margins"]) for e in history if "rewards/margins" in e]
    args = run.trainer.args
    record = {**build_record(run, float(output.training_loss), int(output.global_step), seconds, losses),
              "method": "dpo", "dpo": {"loss_type": list(args.loss_type), "beta": args.beta,
                                       "loss_weights": list(args.loss_weights or [])},
              "margins": margins}
    write_record(run.out_dir, record)
    return TrainResult(run.out_dir, record["train_loss"], record["steps"], seconds, losses, record)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
