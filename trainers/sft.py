"""Supervised fine-tuning of a student on an exported corpus, with TRL's SFTTrainer.

The story, top to bottom: load the training rows (and the corpus provenance written beside them),
load the student, decide between its chat template and plain text, shape the rows as TRL
prompt/completion pairs (TRL then gives prompt tokens label -100: the loss is on completion tokens
only), train, save the final model and tokenizer (a LoRA adapter is merged into the model, and also
kept under ``adapter/``), and write ``distillc_train.json`` last.

Library use::

    from trainers.sft import train
    from trainers.config import SFTRunConfig

    result = train("data/exports/quickstart", student="smollm2-135m", out_dir="data/runs/smol",
                   config=SFTRunConfig.from_preset("persd-paper", max_steps=3))

Command line (a TRL-style YAML file, see :mod:`trainers.config`)::

    python -m trainers.sft --config trainers/configs/smoke.yaml
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainers.config import SFTRunConfig, TrainSpec, load_spec
from trainers.data import TrainingData, load_training_data, shape_for_student
from trainers.errors import TrainError
from trainers.record import forget_record, library_versions, write_record

ADAPTER_DIR = "adapter"


@dataclass(frozen=True)
class TrainResult:
    """What a finished run produced. ``record`` is the content of ``distillc_train.json``."""

    out_dir: Path
    train_loss: float
    steps: int
    seconds: float
    losses: tuple[float, ...]
    record: dict[str, Any]


@dataclass
class PreparedRun:
    """A run ready to train: the TRL trainer over the shaped rows, and what the record needs."""

    trainer: Any
    tokenizer: Any
    data: TrainingData
    student: str
    student_source: str
    chat: bool
    config: SFTRunConfig
    lora: bool
    out_dir: Path
    extra: dict[str, Any] = field(default_factory=dict)   # further record fields (a KD run's teacher, loss)


def default_config() -> SFTRunConfig:
    """The hyper-parameters of a run given none: the ``modern`` preset."""
    return SFTRunConfig()


def train(dataset: Any, *, student: str, out_dir: str | Path, config: SFTRunConfig | None = None,
          lora: bool = False, provenance: dict[str, Any] | None = None,
          variant: str | None = None) -> TrainResult:
    """Fine-tune ``student`` on ``dataset`` and save the result into ``out_dir``.

    ``dataset``: a ``datasets.Dataset``, a path (see :func:`trainers.data.load_training_data`) or
    an already loaded :class:`~trainers.data.TrainingData`; a multi-variant export (or a DatasetDict
    of variants) needs ``variant``. ``student``: ``smollm2-135m``, a local model directory or a Hub
    id. ``provenance`` supplies or overrides the corpus fields of the record.
    """
    run = prepare(dataset, student=student, out_dir=out_dir, config=config, lora=lora,
                  provenance=provenance, variant=variant)
    return fit(run)


def prepare(dataset: Any, *, student: str, out_dir: str | Path, config: SFTRunConfig | None = None,
            lora: bool = False, provenance: dict[str, Any] | None = None,
            variant: str | None = None) -> PreparedRun:
    """Everything before the first optimizer step (also lets tests inspect collated batches)."""
    config = (config or SFTRunConfig()).resolved(devices())
    data = _training_data(dataset, variant, provenance)
    model, tokenizer, source = load_student(student)
    chat = use_chat_template(tokenizer, config.chat, student)
    rows = shape_for_student(data.dataset, chat=chat)
    out = Path(out_dir).expanduser().absolute()
    trainer = _trainer(model, tokenizer, rows, sft_config(config, out), config, lora)
    return PreparedRun(trainer, tokenizer, data, student, source, chat, config, lora, out)


def devices() -> int:
    """Processes taking part in the run (``WORLD_SIZE`` under ``accelerate launch``/``torchrun``)."""
    return max(1, int(os.environ.get("WORLD_SIZE", "1") or 1))


def _training_data(dataset: Any, variant: str | None, provenance: dict[str, Any] | None) -> TrainingData:
    if not isinstance(dataset, TrainingData):
        return load_training_data(dataset, variant=variant, provenance=provenance)
    if variant is not None:
        raise TrainError("variant: select it when loading the TrainingData, not afterwards")
    return TrainingData(dataset.dataset, {**dataset.provenance, **(provenance or {})}, dataset.source)


def fit(run: PreparedRun) -> TrainResult:
    """Train, save the model, write the record. TRL's per-step log lines go to stderr."""
    run.out_dir.mkdir(parents=True, exist_ok=True)
    forget_record(run.out_dir)
    shutil.rmtree(run.out_dir / ADAPTER_DIR, ignore_errors=True)  # a previous LoRA run's
    started = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):
        output = run.trainer.train()
    seconds = time.perf_counter() - started
    save_model(run)
    losses = tuple(float(e["loss"]) for e in run.trainer.state.log_history if "loss" in e)
    record = build_record(run, float(output.training_loss), int(output.global_step), seconds, losses)
    write_record(run.out_dir, record)
    return TrainResult(run.out_dir, record["train_loss"], record["steps"], seconds, losses, record)


# ---------------------------------------------------------------------------------------------
# the student


def load_student(student: str) -> tuple[Any, Any, str]:
    """A fresh, trainable copy of the student (never the shared read-only one of ``load_model``)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from evals.models import ModelError, default_device, resolve_model, torch_dtype

    try:
        source = resolve_model(student)
    except ModelError as exc:
        raise TrainError(str(exc)) from exc
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=torch_dtype("auto", default_device()))
    except (OSError, ValueError) as exc:
        raise TrainError(f"cannot load the student {student!r} from {source}: {_first_line(exc)}") from exc
    return model, tokenizer, source


def use_chat_template(tokenizer: Any, wanted: bool | None, student: str) -> bool:
    """Chat when the student has a template (or when asked to, which then requires one)."""
    has_template = bool(getattr(tokenizer, "chat_template", None))
    if wanted and not has_template:
        raise TrainError(f"chat: true, but the student {student!r} has no chat template")
    return has_template if wanted is None else wanted


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


# ---------------------------------------------------------------------------------------------
# TRL


def sft_config(config: SFTRunConfig, out_dir: Path) -> Any:
    """The ``trl.SFTConfig`` for a run: our values, mixed precision only on a GPU that has it,
    no intermediate checkpoints (the final model is saved by :func:`save_model`). Our
    ``gradient_checkpointing`` is transformers' ``activation_checkpointing`` (the old name is a
    deprecated alias there)."""
    from trl import SFTConfig

    try:
        return SFTConfig(**{**sft_values(config, out_dir), **config.sft_args})
    except (TypeError, ValueError) as exc:
        raise TrainError(f"invalid training settings: {_first_line(exc)}") from exc


def sft_values(config: SFTRunConfig, out_dir: Path) -> dict[str, Any]:
    """Our ``SFTConfig`` values for a run (see :func:`sft_config`)."""
    import torch

    cuda = torch.cuda.is_available()
    return {
        "output_dir": str(out_dir), "learning_rate": config.learning_rate,
        "num_train_epochs": config.num_train_epochs, "max_steps": config.max_steps,
        "per_device_train_batch_size": config.per_device_train_batch_size,
        "gradient_accumulation_steps": config.gradient_accumulation_steps,
        "lr_scheduler_type": config.lr_scheduler_type, "warmup_steps": config.warmup_steps,
        "weight_decay": config.weight_decay, "max_grad_norm": config.max_grad_norm,
        "max_length": config.max_length, "seed": config.seed, "logging_steps": config.logging_steps,
        "packing": config.packing, "activation_checkpointing": config.gradient_checkpointing,
        "completion_only_loss": config.completion_only_loss,
        "bf16": cuda and torch.cuda.is_bf16_supported(), "fp16": False,
        "save_strategy": "no", "report_to": "none", "dataloader_pin_memory": cuda,
    }


def lora_config(config: SFTRunConfig) -> Any:
    from peft import LoraConfig

    targets = config.lora_target_modules
    return LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=list(targets) if isinstance(targets, tuple) else targets,
                      task_type="CAUSAL_LM")


def _trainer(model: Any, tokenizer: Any, rows: Any, args: Any, config: SFTRunConfig, lora: bool) -> Any:
    from trl import SFTTrainer

    with contextlib.redirect_stdout(sys.stderr):
        return SFTTrainer(model=model, args=args, train_dataset=rows, processing_class=tokenizer,
                          peft_config=lora_config(config) if lora else None)


# ---------------------------------------------------------------------------------------------
# outputs


def save_model(run: PreparedRun) -> None:
    """The final model and tokenizer; a LoRA adapter is saved, then merged into a plain model that
    any ``from_pretrained`` (and so the evaluator) loads directly."""
    model = run.trainer.accelerator.unwrap_model(run.trainer.model)
    if run.lora:
        model.save_pretrained(run.out_dir / ADAPTER_DIR)
        model = model.merge_and_unload()
    model.config.use_cache = True
    model.save_pretrained(run.out_dir)
    run.tokenizer.save_pretrained(run.out_dir)


def build_record(run: PreparedRun, train_loss: float, steps: int, seconds: float,
                 losses: tuple[float, ...]) -> dict[str, Any]:
    """The content of ``distillc_train.json``."""
    prov = run.data.provenance
    return {
        "corpus": prov.get("corpus"), "version": prov.get("version"),
        "fingerprint": prov.get("fingerprint"), "variant": prov.get("variant"),
        "recipe": prov.get("recipe"), "student": run.student, "student_source": run.student_source,
        "config": {**run.config.to_dict(), "lora": run.lora, "devices": devices(),
                   "global_batch_size": run.config.global_batch_for(devices())},
        "library_versions": library_versions(),
        "train_loss": train_loss, "steps": steps, "seconds": round(seconds, 3),
        "data": {"source": run.data.source, "rows": len(run.data.dataset), "format": run.data.format,
                 "variants": prov.get("variants", []), "chat_template": run.chat},
        "losses": list(losses),
        **run.extra,
    }


# ---------------------------------------------------------------------------------------------
# command line


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m trainers.sft", description="Fine-tune a student with TRL's SFTTrainer.",
        epilog="example:\n  python -m trainers.sft --config trainers/configs/smoke.yaml",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, metavar="FILE", help="TRL-style YAML run file")
    p.add_argument("--student", metavar="MODEL", help="overrides model_name_or_path")
    p.add_argument("--data", metavar="PATH", help="overrides dataset_name")
    p.add_argument("--variant", metavar="NAME", help="overrides variant")
    p.add_argument("--out", metavar="DIR", help="overrides output_dir")
    p.add_argument("--lora", action="store_true", help="train a LoRA adapter (use_peft: true)")
    p.add_argument("--max-steps", type=int, metavar="N", help="stop after N optimizer steps")
    return p.parse_args(argv)


def spec_from_args(args: argparse.Namespace) -> TrainSpec:
    """The config file with command-line overrides; the student, data and output must be known."""
    spec = load_spec(args.config)
    config = spec.config if args.max_steps is None else spec.config.replace(max_steps=args.max_steps)
    student, data, out = args.student or spec.student, args.data or spec.data, args.out or spec.out_dir
    missing = [k for k, v in (("model_name_or_path", student), ("dataset_name", data),
                              ("output_dir", out)) if not v]
    if missing:
        raise TrainError(f"{args.config}: missing {', '.join(missing)} (or the matching option)")
    return TrainSpec(config=config, student=student, data=data, dataset_config=spec.dataset_config,
                     split=spec.split, variant=args.variant or spec.variant, out_dir=out,
                     lora=args.lora or spec.lora, path=spec.path)


def train_spec(spec: TrainSpec) -> TrainResult:
    """Run what a :class:`TrainSpec` describes (a Hub dataset honours its config and split)."""
    data = load_training_data(spec.data, variant=spec.variant, dataset_config=spec.dataset_config,
                              split=spec.split)
    return train(data, student=spec.student or "", out_dir=spec.out_dir or "", config=spec.config,
                 lora=spec.lora)


def main(argv: Sequence[str] | None = None) -> int:
    from evals.models import apply_torch_threads

    args = parse_args(argv)
    try:
        apply_torch_threads()
    except ValueError as exc:
        return _fail(exc)
    try:
        result = train_spec(spec_from_args(args))
    except TrainError as exc:
        return _fail(exc)
    print(f"{result.steps} steps, train loss {result.train_loss:.4f}, {result.seconds:.1f} s -> {result.out_dir}")
    return 0


def _fail(exc: BaseException) -> int:
    print(f"trainers.sft: error: {_first_line(exc)}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
