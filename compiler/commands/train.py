"""distillc train: fine-tune a student on a corpus version (exported on the fly) or an exported
dataset directory, with TRL (see trainers/README.md): ``--method sft`` (the default) with the
SFTTrainer on prompt/completion or messages rows, ``--method dpo`` with the DPOTrainer (DPO + SFT) on
preference pairs, ``--method kd`` distils from a teacher's logits (:mod:`compiler.commands.train_kd`)."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from compiler.commands.common import add_json, add_store, print_json, store_path
from compiler.errors import DistillcError, UsageError

NAME = "train"
HELP = ("fine-tune a student on a corpus version or an exported dataset (TRL SFT, loss on completions; "
        "--method dpo: DPO + SFT on preference pairs; --method kd: distil it from a teacher's logits)")
# --method -> (the trainer module, whether it trains on preference pairs); each module has
# train(data, student=, out_dir=, config=, lora=[, variant=]) and default_config(); kd: train_kd
METHODS = {"sft": ("trainers.sft", False), "dpo": ("trainers.dpo", True)}
EXAMPLE = ("distillc train quickstart --student smollm2-135m --out data/runs/smoke-smollm2 "
           "--config trainers/configs/smoke.yaml --max-steps 3")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", metavar="CORPUS[@VERSION][:VARIANT]|DATASET_DIR[:VARIANT]",
                   help="a corpus version in the store, or a directory written by `distillc export`")
    p.add_argument("--student", metavar="MODEL", default=None,
                   help="smollm2-135m, a local model directory or a Hugging Face model id")
    p.add_argument("--out", metavar="DIR", default=None, help="where the trained model is saved")
    p.add_argument("--config", metavar="FILE", default=None,
                   help="TRL-style YAML (hyper-parameters, preset: modern | persd-paper | amr-evol-paper | soda-dpo; "
                   "persd-paper reaches "
                   "the paper's global batch of 1,920 by gradient accumulation: 4 per device x 480 steps on "
                   "one device, fewer on several; amr-evol-paper: 200 steps at a global batch of 128; "
                   "soda-dpo: the default of --method dpo; the run record says what ran)")
    p.add_argument("--method", choices=(*METHODS, "kd"), default="sft",
                   help="sft: supervised fine-tuning (default); dpo: DPO + SFT on preference pairs (prompt/chosen/"
                   "rejected, e.g. SODA's variant), reference model = the student as given, preset soda-dpo; "
                   "kd: distil from a teacher's logits (AKD's losses, --loss)")
    p.add_argument("--lora", action="store_true", help="train a LoRA adapter (merged into the saved model)")
    p.add_argument("--max-steps", type=int, metavar="N", default=None, help="stop after N optimizer steps")
    from compiler.commands.train_kd import add_kd_arguments
    add_kd_arguments(p)
    add_store(p)
    add_json(p)


def run(args: argparse.Namespace) -> int:
    from evals.models import apply_torch_threads
    from trainers.errors import TrainError

    try:
        apply_torch_threads()
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    from compiler.commands.train_kd import check_kd_flags, train_kd

    check_kd_flags(args)
    try:
        result = train_kd(args) if args.method == "kd" else _train(args)
    except TrainError as exc:
        raise DistillcError(str(exc).strip().splitlines()[0]) from exc
    summary = _summary(result)
    if args.json:
        print_json(summary)
    else:
        where = f"{summary['corpus']}@{summary['version']}" if summary["corpus"] else summary["data"]
        print(f"{summary['student']} on {where}{_variant(summary)}: {summary['steps']} steps, "
              f"train loss {summary['train_loss']:.4f}, {summary['seconds']:.1f} s -> {summary['out']}")
    return 0


def _train(args: argparse.Namespace) -> Any:
    import importlib

    from trainers.config import load_spec

    module_name, preference = METHODS[args.method]
    trainer = importlib.import_module(module_name)
    spec = load_spec(args.config, args.method) if args.config else None
    config = spec.config if spec else None
    if args.max_steps is not None:
        if args.max_steps < 1:
            raise UsageError(f"--max-steps: expected a positive number, got {args.max_steps}")
        config = (config or trainer.default_config()).replace(max_steps=args.max_steps)
    student = args.student or (spec.student if spec else None)
    out = args.out or (spec.out_dir if spec else None)
    if not student or not out:
        raise UsageError("train: --student and --out are required (or model_name_or_path and "
                         "output_dir in --config)")
    lora = args.lora or bool(spec and spec.lora)
    default_variant = spec.variant if spec else None     # the config's `variant:`, unless the target names one
    path, variant = dataset_target(args.target)
    if path is not None:
        return trainer.train(str(path), student=student, out_dir=out, config=config, lora=lora,
                             variant=variant or default_variant)
    target = args.target if ":" in args.target or not default_variant else f"{args.target}:{default_variant}"
    with tempfile.TemporaryDirectory(prefix="distillc-train-") as tmp:
        data = export_for_training(args, target, Path(tmp) / "data", preference=preference)
        return trainer.train(data, student=student, out_dir=out, config=config, lora=lora)


def dataset_target(target: str) -> tuple[Path | None, str | None]:
    """(directory, variant) when ``target`` names a dataset directory (``DIR`` or ``DIR:VARIANT``);
    (None, None) for a corpus reference."""
    path = Path(target).expanduser()
    if path.is_dir():
        return path, None
    head, sep, variant = target.rpartition(":")
    if sep and head and Path(head).expanduser().is_dir():
        return Path(head).expanduser(), variant or None
    if target.startswith(("/", ".", "~")) or "/" in target:
        raise DistillcError(f"{target}: no such dataset directory")
    return None, None


def export_for_training(args: argparse.Namespace, target: str, out: Path, kind: str = "SFT", *,
                        preference: bool = False) -> Any:
    """Export ``CORPUS[@VERSION][:VARIANT]`` as a Hugging Face dataset into ``out`` and load it
    (its recorded source is the version, not the temporary directory)."""
    from compiler.export import export_version
    from compiler.store.db import Store
    from compiler.store.versions import resolve
    from trainers.data import TrainingData, load_training_data

    ref, _, variant = target.partition(":")
    with Store.open_readonly(store_path(args)) as store:
        version = resolve(store, ref)
        info = export_version(store, version, out, "hf", variant=variant or None)
    if not variant and len(info["variants"]) > 1:
        raise DistillcError(f"{version.ref} holds several variants ({', '.join(info['variants'])}): "
                            f"train on one, e.g. {version.ref}:{info['variants'][0]}")
    data = load_training_data(str(out), kind=kind, preference=preference)
    source = version.ref + (f":{variant}" if variant else "")
    return TrainingData(data.dataset, data.provenance, source)


def _summary(result: Any) -> dict[str, Any]:
    record = result.record
    keys = ("corpus", "version", "fingerprint", "variant", "student", "steps", "train_loss", "seconds")
    extra = {"margins": record["margins"]} if "margins" in record else {}
    if record.get("method") == "kd":
        extra.update(teacher=record.get("teacher"), loss=record["kd"]["loss"],
                     teacher_from=record["kd"]["teacher_from"])
    return {**{k: record.get(k) for k in keys}, "method": record.get("method", "sft"), **extra,
            "out": str(result.out_dir), "data": record["data"]["source"], "rows": record["data"]["rows"]}


def _variant(summary: dict[str, Any]) -> str:
    source = "the corpus top-k" if summary.get("teacher_from") == "corpus" else summary.get("teacher")
    kd = f", kd {summary['loss']} from {source}" if summary.get("method") == "kd" else ""
    return (f" ({summary['variant']})" if summary["variant"] else "") + kd
