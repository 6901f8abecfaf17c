"""Hyper-parameters of an SFT run, their presets, and the TRL-style YAML file that names a whole run.

A run config is a frozen :class:`SFTRunConfig`. Its defaults are the ``modern`` preset; ``persd-paper``
reproduces the PERsD script's optimisation settings (METHODS.md 1(e)), its global batch of 1,920
sequences included; ``amr-evol-paper`` AMR-Evol's 200 steps with the proposed batch of 128 (2(e));
``soda-dpo`` SODA's DPO settings (3(e)). ``target_global_batch_size`` sets the gradient accumulation at
run time from the per-device batch and the number of devices (4 x 480 on one device, 12 x 20 on
eight), so each optimizer step sees the paper's batch on any machine. Any other ``trl.SFTConfig``
field can be given too and is passed through unchanged (``trl.DPOConfig`` fields for a DPO run,
:mod:`trainers.dpo`).

The YAML file is flat, with TRL's own key names (as ``trl sft --config`` reads them)::

    model_name_or_path: smollm2-135m        # the student: embedded name, local directory or Hub id
    dataset_name: data/exports/quickstart    # an exported dataset directory, a data file or a Hub id
    variant: StanD                           # which variant of a multi-variant export
    output_dir: data/runs/quickstart-smol
    preset: modern                           # start from a preset, then override single values
    learning_rate: 1.0e-5
    use_peft: true                           # LoRA (lora_r, lora_alpha, lora_dropout, lora_target_modules)

A file that names no ``preset`` starts from its method's: ``modern`` for SFT, ``soda-dpo`` for DPO.
Unknown keys are errors with a "did you mean"; every error names the file, line and key.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from trainers.errors import ConfigError

PERSD_PAPER_GLOBAL_BATCH = 1920  # 12 per GPU x 20 accumulation x 8 GPUs (METHODS.md 1(e))
AMR_EVOL_GLOBAL_BATCH = 128      # METHODS.md 2(e): 200 steps x ~150 = 3 epochs of ~10k; proposed 128

PRESETS: dict[str, dict[str, Any]] = {
    # METHODS.md 1(h) item 9: global batch 64-128, 3 epochs, lr 2e-5, cosine. These are the defaults.
    "modern": {},
    # METHODS.md 1(e): lr 5e-6 for 20 epochs, AdamW, WarmupLR with no warm-up steps (a constant
    # rate), max length 2048, and the paper's global batch of ~1,920 reached by gradient accumulation.
    "persd-paper": {
        "learning_rate": 5e-6, "num_train_epochs": 20.0, "lr_scheduler_type": "constant",
        "warmup_steps": 0.0, "per_device_train_batch_size": 4, "max_length": 2048,
        "target_global_batch_size": PERSD_PAPER_GLOBAL_BATCH,
    },
    # METHODS.md 3(e), ours: DPO at lr 1e-6 (the top of 5e-7..1e-6), 3 epochs, max length 2048; the
    # DPO + SFT loss itself (loss_type, loss_weights, beta) is trainers.dpo's default.
    "soda-dpo": {"learning_rate": 1e-6, "num_train_epochs": 3.0, "max_length": 2048},
    # METHODS.md 2(e) and 2(h)-5/6: AMR-Evol states 200 steps (and "3 epochs"); step-based, epochs follow
    # from the data size. Unstated, proposed: global batch 128, lr 2e-5, cosine, 3 % warm-up.
    "amr-evol-paper": {
        "learning_rate": 2e-5, "max_steps": 200, "lr_scheduler_type": "cosine", "warmup_steps": 0.03,
        "per_device_train_batch_size": 4, "max_length": 2048, "target_global_batch_size": AMR_EVOL_GLOBAL_BATCH,
    },
}


@dataclass(frozen=True)
class SFTRunConfig:
    """Resolved hyper-parameters of one SFT run (defaults: the ``modern`` preset).

    ``chat``: None uses the student's chat template when it has one; True requires it; False trains
    on plain prompt + completion text. ``completion_only_loss``: prompt tokens get label -100.
    ``target_global_batch_size``: when set, the sequences per optimizer step over all devices;
    ``gradient_accumulation_steps`` is then derived at run time (:meth:`accumulation_for`).
    ``intended_global_batch_size``: a batch the run stands for when the one actually run differs,
    recorded for the reader (None: they are the same). ``sft_args``: further ``trl.SFTConfig``
    fields (``trl.DPOConfig`` fields for a DPO run), as given.
    """

    preset: str = "modern"
    learning_rate: float = 2e-5
    num_train_epochs: float = 3.0
    max_steps: int = -1
    per_device_train_batch_size: int = 4
    gradient_accumulation_steps: int = 16
    lr_scheduler_type: str = "cosine"
    warmup_steps: float = 0.03
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    max_length: int | None = 2048
    seed: int = 42
    logging_steps: int = 1
    packing: bool = False
    gradient_checkpointing: bool = False
    chat: bool | None = None
    completion_only_loss: bool = True
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_target_modules: str | tuple[str, ...] = "all-linear"
    intended_global_batch_size: int | None = None
    target_global_batch_size: int | None = None
    sft_args: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_range(self)

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> SFTRunConfig:
        """The named preset with single values overridden."""
        if name not in PRESETS:
            raise ConfigError(f"unknown preset {name!r}{_did_you_mean(name, PRESETS)} "
                              f"(presets: {', '.join(PRESETS)})")
        return cls(**{"preset": name, **PRESETS[name], **overrides})

    def replace(self, **changes: Any) -> SFTRunConfig:
        return dataclasses.replace(self, **changes)

    def accumulation_for(self, devices: int = 1) -> int:
        """Gradient accumulation steps on ``devices`` devices: the one given, or with a target global
        batch the smallest count that reaches it."""
        if self.target_global_batch_size is None:
            return self.gradient_accumulation_steps
        per_step = self.per_device_train_batch_size * max(1, devices)
        return max(1, -(-self.target_global_batch_size // per_step))

    def global_batch_for(self, devices: int = 1) -> int:
        """Sequences per optimizer step over ``devices`` devices."""
        return self.per_device_train_batch_size * self.accumulation_for(devices) * max(1, devices)

    @property
    def global_batch_size(self) -> int:
        """Sequences per optimizer step on one device."""
        return self.global_batch_for(1)

    def resolved(self, devices: int = 1) -> SFTRunConfig:
        """This config with the accumulation it runs with on ``devices`` devices written in."""
        return self.replace(gradient_accumulation_steps=self.accumulation_for(devices))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values, plus the global batch actually run (on one device)."""
        out = dataclasses.asdict(self)
        out["sft_args"] = dict(self.sft_args)
        out["lora_target_modules"] = _plain(self.lora_target_modules)
        out["gradient_accumulation_steps"] = self.accumulation_for(1)
        out["global_batch_size"] = self.global_batch_size
        return out


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _check_range(config: SFTRunConfig) -> None:
    positive = ("learning_rate", "per_device_train_batch_size", "gradient_accumulation_steps",
                "logging_steps", "lora_r", "lora_alpha")
    if config.target_global_batch_size is not None and config.target_global_batch_size <= 0:
        raise ConfigError(f"target_global_batch_size: must be positive, got {config.target_global_batch_size!r}")
    for name in positive:
        if getattr(config, name) <= 0:
            raise ConfigError(f"{name}: must be positive, got {getattr(config, name)!r}")
    if config.num_train_epochs <= 0 and config.max_steps <= 0:
        raise ConfigError("num_train_epochs: must be positive (or set max_steps)")
    if config.max_length is not None and config.max_length < 2:
        raise ConfigError(f"max_length: must be at least 2, got {config.max_length}")
    if not 0 <= config.lora_dropout < 1:
        raise ConfigError(f"lora_dropout: must be in [0, 1), got {config.lora_dropout}")


# ---------------------------------------------------------------------------------------------
# the YAML file


@dataclass(frozen=True)
class TrainSpec:
    """Everything a config file says: what to train on, into where, and how."""

    config: SFTRunConfig
    student: str | None = None
    data: str | None = None
    dataset_config: str | None = None
    split: str = "train"
    variant: str | None = None
    out_dir: str | None = None
    lora: bool = False
    path: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)   # the caller's own keys (load_spec's ``extra``)


# TRL's script keys (ScriptArguments, ModelConfig) -> TrainSpec fields.
RUN_KEYS = {"model_name_or_path": "student", "dataset_name": "data", "dataset_config": "dataset_config",
            "dataset_train_split": "split", "variant": "variant", "output_dir": "out_dir",
            "use_peft": "lora"}
_RUN_KINDS = {"student": str, "data": str, "dataset_config": str, "split": str, "variant": str,
              "out_dir": str, "lora": bool}


def load_spec(path: str | Path, method: str = "sft", extra: Mapping[str, Any] | None = None) -> TrainSpec:
    """Read a TRL-style YAML run file (see the module docstring); keys that are not ours must be
    fields of the TRL config of ``method`` (``sft``: SFTConfig, ``dpo``: DPOConfig). ``extra`` maps
    further keys a trainer understands to their types (e.g. a KD run's ``loss: str``); their values
    come back in ``TrainSpec.extra``."""
    path = Path(path)
    kinds = dict(extra or {})
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config ({exc.strerror or exc})") from exc
    raw, lines = _parse(text, path)
    where = _Where(str(path), lines)
    run = {RUN_KEYS[k]: _coerce(v, _RUN_KINDS[RUN_KEYS[k]], where, k) for k, v in raw.items() if k in RUN_KEYS}
    own = {k: _coerce(v, kinds[k], where, k) for k, v in raw.items() if k in kinds}
    config = _config_from({k: v for k, v in raw.items() if k not in kinds}, where, method, known=kinds)
    return TrainSpec(config=config, path=str(path), extra=own, **run)


def load_config(path: str | Path, method: str = "sft") -> SFTRunConfig:
    """Only the hyper-parameters of a YAML run file."""
    return load_spec(path, method).config


def _parse(text: str, path: Path) -> tuple[dict[str, Any], dict[str, int]]:
    try:
        raw = yaml.safe_load(text)
        node = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{line}: not valid YAML ({getattr(exc, 'problem', None) or exc})") from exc
    if raw is None:
        raw, node = {}, None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of settings, got {type(raw).__name__}")
    lines = {k.value: k.start_mark.line + 1 for k, _ in node.value} if node is not None else {}
    return raw, lines


@dataclass(frozen=True)
class _Where:
    file: str
    lines: Mapping[str, int]

    def at(self, key: str) -> str:
        line = self.lines.get(key)
        return f"{self.file}:{line} {key}" if line else f"{self.file} {key}"


def _config_from(raw: Mapping[str, Any], where: _Where, method: str = "sft",
                 known: Mapping[str, Any] | None = None) -> SFTRunConfig:
    own, passed = {}, {}
    hints = _config_hints()
    for key, value in raw.items():
        if key in RUN_KEYS or key == "preset":
            continue
        if key in hints and key != "sft_args":
            own[key] = _coerce(value, hints[key], where, key)
        elif key in _trl_config_fields(method):  # imports trl: only asked for keys that are not ours
            passed[key] = _number_or_value(value)
        else:
            names = [*RUN_KEYS, *hints, *_trl_config_fields(method), *(known or {})]
            raise ConfigError(f"{where.at(key)}: unknown setting{_did_you_mean(key, names)}")
    preset = raw.get("preset", DEFAULT_PRESETS[method])
    if preset not in PRESETS:
        raise ConfigError(f"{where.at('preset')}: unknown preset {preset!r}"
                          f"{_did_you_mean(str(preset), PRESETS)} (presets: {', '.join(PRESETS)})")
    try:
        return SFTRunConfig.from_preset(preset, **own, sft_args=passed)
    except ConfigError as exc:
        key, _, message = str(exc).partition(": ")
        raise ConfigError(f"{where.at(key)}: {message}") from exc


def _config_hints() -> dict[str, Any]:
    return typing.get_type_hints(SFTRunConfig)


TRL_CONFIGS = {"sft": "SFTConfig", "dpo": "DPOConfig"}   # method -> the trl config class its files extend
DEFAULT_PRESETS = {"sft": "modern", "dpo": "soda-dpo"}     # method -> the preset of a file that names none


@functools.cache
def _trl_config_fields(method: str = "sft") -> frozenset[str]:
    import trl

    config = getattr(trl, TRL_CONFIGS[method])
    return frozenset(f.name for f in dataclasses.fields(config) if f.init)


_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _number_or_value(value: Any) -> Any:
    """YAML 1.1 reads ``2e-5`` as a string; pass numbers through as numbers."""
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        number = float(value)
        return int(number) if number.is_integer() and "." not in value and "e" not in value.lower() else number
    return value


def _coerce(value: Any, kind: Any, where: _Where, key: str) -> Any:
    """Check ``value`` against a type hint (float, int, bool, str, optional, str-or-tuple)."""
    options = typing.get_args(kind) if isinstance(kind, types.UnionType) else (kind,)
    if value is None and type(None) in options:
        return None
    for option in options:
        ok, converted = _convert(value, option)
        if ok:
            return converted
    names = " or ".join(_kind_name(o) for o in options if o is not type(None))
    raise ConfigError(f"{where.at(key)}: expected {names}, got {value!r}")


def _convert(value: Any, kind: Any) -> tuple[bool, Any]:
    value = _number_or_value(value)
    if kind is bool:
        return isinstance(value, bool), value
    if kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return ok, value
    if kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return ok, float(value) if ok else value
    if kind is str:
        return isinstance(value, str), value
    if typing.get_origin(kind) is tuple:
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        return ok, tuple(value) if ok else value
    return False, value


def _kind_name(kind: Any) -> str:
    if typing.get_origin(kind) is tuple:
        return "a list of names"
    return {float: "a number", int: "an integer", bool: "true or false", str: "a string"}.get(kind, str(kind))


def _did_you_mean(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
