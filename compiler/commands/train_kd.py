"""``distillc train --method kd``: distil a student from a teacher's logits (AKD, METHODS.md §4) with
``trainers/akd.py``. Kept apart from the SFT path of :mod:`compiler.commands.train`, which calls
in here for its flags and its ``--method kd`` runs.

Settings come from ``--config`` (a run file such as ``trainers/configs/akd.yaml``: the SFT keys plus
``teacher_model_name_or_path``, ``loss``, ``mu``, ``beta``, ``alpha``, ``lmbda``, ``teacher_from``,
``teacher_logits_on``), then the flags below, which win.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from compiler.errors import UsageError

LOSS_NAMES = ("fkl", "rkl", "jsd", "skl", "srkl", "akl")    # trainers.losses.LOSSES (kept cheap to import)
# flag attribute -> run-file key
KD_FLAGS = {"teacher": "teacher_model_name_or_path", "loss": "loss", "mu": "mu", "beta": "beta",
            "alpha": "alpha", "lmbda": "lmbda", "teacher_from": "teacher_from",
            "teacher_logits_on": "teacher_logits_on"}


def add_kd_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("knowledge distillation (--method kd)")
    g.add_argument("--teacher", metavar="MODEL", default=None,
                   help="the teacher: smollm2-135m, a local model directory or a Hub id (the student's vocabulary); "
                   "with --teacher-from corpus it is only named in the run record, not loaded")
    g.add_argument("--loss", metavar="NAME", default=None,
                   help=f"{' | '.join(LOSS_NAMES)} (default akl: adaptive forward/reverse KL)")
    g.add_argument("--mu", type=float, metavar="M", default=None, help="akl: teacher mass of the head, in (0, 1] (0.5)")
    g.add_argument("--beta", type=float, metavar="B", default=None,
                   help="jsd: 0 is forward KL, 1 reverse KL (0.5)")
    g.add_argument("--alpha", type=float, metavar="A", default=None, help="skl/srkl: skew, in [0, 1) (0.1)")
    g.add_argument("--lmbda", type=float, metavar="L", default=None,
                   help="probability of training a batch on the student's own samples (0: off-policy, AKD)")
    g.add_argument("--teacher-from", choices=("model", "corpus"), default=None,
                   help="model: load the teacher's weights (default); corpus: use the top-k log-probabilities "
                   "captured at compile time, loading no teacher")
    g.add_argument("--teacher-logits-on", choices=("student_prompt", "teacher_prompt"), default=None,
                   help="the prompt the teacher scores the completion after (default: the student's)")


def check_kd_flags(args: argparse.Namespace) -> None:
    """KD flags are refused with ``--method sft`` (one line, exit 1)."""
    if args.method == "kd":
        return
    given = [name for name in KD_FLAGS if getattr(args, name, None) is not None]
    if given:
        raise UsageError(f"--{given[0].replace('_', '-')}: only with --method kd")


def train_kd(args: argparse.Namespace) -> Any:
    from compiler.commands.train import dataset_target, export_for_training
    from trainers.akd import KD_KEYS, KDSettings, train
    from trainers.config import SFTRunConfig, load_spec

    spec = load_spec(args.config, extra=KD_KEYS) if args.config else None
    config = spec.config if spec else SFTRunConfig()
    if args.max_steps is not None:
        if args.max_steps < 1:
            raise UsageError(f"--max-steps: expected a positive number, got {args.max_steps}")
        config = config.replace(max_steps=args.max_steps)
    values = {**(spec.extra if spec else {}),
              **{key: getattr(args, name) for name, key in KD_FLAGS.items() if getattr(args, name) is not None}}
    kd = KDSettings.from_mapping(values)
    student, out = args.student or (spec.student if spec else None), args.out or (spec.out_dir if spec else None)
    if not student or not out:
        raise UsageError("train: --student and --out are required (or model_name_or_path and output_dir in --config)")
    lora = args.lora or bool(spec and spec.lora)
    default_variant = spec.variant if spec else None
    path, variant = dataset_target(args.target)
    if path is not None:
        return train(str(path), student=student, out_dir=out, kd=kd, config=config, lora=lora,
                     variant=variant or default_variant)
    target = args.target if ":" in args.target or not default_variant else f"{args.target}:{default_variant}"
    with tempfile.TemporaryDirectory(prefix="distillc-train-") as tmp:
        data = export_for_training(args, target, Path(tmp) / "data", kind="KD")
        return train(data, student=student, out_dir=out, kd=kd, config=config, lora=lora)
