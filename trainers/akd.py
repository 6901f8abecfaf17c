"""Knowledge distillation of a student from a teacher (METHODS.md §4, AKD) on an exported corpus.

The story, top to bottom: load the KD records (a corpus variant with completions), load the student
and — unless the corpus carries the teacher's top-k log-probabilities and ``teacher_from`` is
``corpus`` — the teacher, and check before any step that the two share one vocabulary; encode the
records for both models (:mod:`trainers.kd_data`); train with TRL's ``GKDTrainer`` whose loss is the
loss library's (:mod:`trainers.kd_trainer`, :mod:`trainers.losses`); save the student and write
``distillc_train.json`` with the teacher, the loss and its parameters.

Library use::

    from trainers.akd import KDSettings, train
    from trainers.config import SFTRunConfig

    result = train("data/exports/akd-smol", student="data/models/smol-student", out_dir="data/runs/akd",
                   kd=KDSettings(teacher="smollm2-135m", loss="akl", mu=0.5),
                   config=SFTRunConfig(max_steps=5))

Settings (``KDSettings``; in a run file, the keys of :data:`KD_KEYS`): ``loss`` (fkl | rkl | jsd | skl
| srkl | akl), ``mu`` (AKL head mass, in (0, 1]), ``beta`` (jsd), ``alpha`` (skl / srkl),
``lmbda`` (probability of an on-policy batch; 0 = AKD's off-policy training), ``teacher_from``
(``model``: the teacher's weights; ``corpus``: its top-k log-probabilities from the records, nothing
loaded), ``teacher_logits_on`` (``student_prompt``: the teacher scores the student's prompt + the
completion; ``teacher_prompt``: its own prompt + the same completion).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainers.config import SFTRunConfig
from trainers.data import TrainingData, chat_pair, load_training_data, plain_pair, shape_for_student
from trainers.errors import ConfigError, TrainError
from trainers.kd_data import Encoder, KDCollator, TokenMap
from trainers.kd_trainer import LossSettings
from trainers.sft import (PreparedRun, TrainResult, devices, fit, load_student, lora_config, sft_values,
                          use_chat_template)

TEACHER_FROM = ("model", "corpus")
LOGITS_ON = ("student_prompt", "teacher_prompt")
# Keys a KD run file may hold besides the SFT ones, and their types.
KD_KEYS: dict[str, Any] = {"teacher_model_name_or_path": str, "loss": str, "mu": float, "beta": float,
                           "alpha": float, "lmbda": float, "teacher_from": str, "teacher_logits_on": str,
                           "max_new_tokens": int, "temperature": float}


@dataclass(frozen=True)
class KDSettings:
    """What a KD run distils with (module docstring). ``max_new_tokens`` and ``temperature`` are
    for on-policy sampling (``lmbda`` > 0) only; the loss itself uses no temperature."""

    teacher: str | None = None
    loss: str = "akl"
    mu: float = 0.5
    beta: float = 0.5
    alpha: float = 0.1
    lmbda: float = 0.0
    teacher_from: str = "model"
    teacher_logits_on: str = "student_prompt"
    max_new_tokens: int = 512
    temperature: float = 0.9

    def __post_init__(self) -> None:
        from trainers.losses import check_settings

        try:
            check_settings(self.loss, self.mu, self.beta, self.alpha)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        _check_choice("teacher_from", self.teacher_from, TEACHER_FROM)
        _check_choice("teacher_logits_on", self.teacher_logits_on, LOGITS_ON)
        if not 0.0 <= self.lmbda <= 1.0:
            raise ConfigError(f"lmbda must be in [0, 1], got {self.lmbda}")
        if self.teacher_from == "model" and not self.teacher:
            raise ConfigError("a teacher is needed (--teacher MODEL), or teacher_from: corpus")
        if self.teacher_from == "corpus" and self.lmbda > 0:
            raise ConfigError("lmbda > 0 samples from the student and needs the teacher's weights to score the "
                              "samples: use teacher_from: model")

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> KDSettings:
        """From run-file keys (``teacher_model_name_or_path`` is the teacher) and overrides."""
        renamed = {("teacher" if k == "teacher_model_name_or_path" else k): v for k, v in values.items()
                   if v is not None}
        return cls(**renamed)

    def loss_settings(self) -> LossSettings:
        return LossSettings(self.loss, self.mu, self.beta, self.alpha)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")


def train(dataset: Any, *, student: str, out_dir: str | Path, kd: KDSettings,
          config: SFTRunConfig | None = None, lora: bool = False, provenance: dict[str, Any] | None = None,
          variant: str | None = None) -> TrainResult:
    """Distil into ``student`` on ``dataset`` (as :func:`trainers.sft.train` takes it) and save it."""
    return fit(prepare(dataset, student=student, out_dir=out_dir, kd=kd, config=config, lora=lora,
                       provenance=provenance, variant=variant))


def prepare(dataset: Any, *, student: str, out_dir: str | Path, kd: KDSettings,
            config: SFTRunConfig | None = None, lora: bool = False, provenance: dict[str, Any] | None = None,
            variant: str | None = None) -> PreparedRun:
    """Everything before the first optimizer step: data, models, the vocabulary check, the trainer."""
    config = (config or SFTRunConfig()).resolved(devices())
    data = kd_data(dataset, variant, provenance, kd)
    model, tokenizer, source = load_student(student)
    teacher = load_teacher(kd.teacher) if kd.teacher_from == "model" else None
    if teacher is not None:
        check_vocabularies(model, tokenizer, student, teacher[0], teacher[1], kd.teacher)
    chat = use_chat_template(tokenizer, config.chat, student)
    rows, skipped = encode(data.dataset, tokenizer, chat, config.max_length, kd)
    out = Path(out_dir).expanduser().absolute()
    trainer = make_trainer(model, teacher[0] if teacher else None, tokenizer, rows, gkd_config(config, out, kd),
                           config, kd, lora)
    # the teacher is named even when only its captured top-k is used: `distillc report` sets the
    # distilled model against it
    extra = {"method": "kd", "teacher": kd.teacher,
             "teacher_source": teacher[2] if teacher else None,
             "kd": {**kd.to_dict(), "rows_used": len(rows), "rows_skipped": skipped}}
    return PreparedRun(trainer, tokenizer, data, student, source, chat, config, lora, out, extra)


# ---------------------------------------------------------------------------------------------
# data


def kd_data(dataset: Any, variant: str | None, provenance: dict[str, Any] | None, kd: KDSettings) -> TrainingData:
    """The records, checked for what the settings need: completions, and the teacher-side prompt or
    top-k log-probabilities when asked to use them."""
    if isinstance(dataset, TrainingData):
        data = TrainingData(dataset.dataset, {**dataset.provenance, **(provenance or {})}, dataset.source)
    else:
        data = load_training_data(dataset, variant=variant, provenance=provenance, kind="KD")
    where = (data.source or "the dataset") + (f" (variant {data.provenance['variant']})"
                                              if data.provenance.get("variant") else "")
    needs = {"teacher_prompt": kd.teacher_logits_on == "teacher_prompt", "teacher_topk": kd.teacher_from == "corpus"}
    for column, needed in needs.items():
        if needed and (column not in data.dataset.column_names
                       or all(v is None for v in data.dataset[column])):
            why = ("teacher_logits_on: teacher_prompt" if column == "teacher_prompt" else
                   "teacher_from: corpus (compile with akd_teacher's top_logprobs and an OpenAI-compatible teacher)")
            raise TrainError(f"{where} has no {column} values, which {why} needs")
    return data


def encode(dataset: Any, tokenizer: Any, chat: bool, max_length: int | None, kd: KDSettings) -> tuple[Any, int]:
    """The encoded rows (a ``datasets.Dataset``) and how many records were skipped (a prompt that fills
    ``max_length``, or a record without the teacher's top-k when training from it)."""
    import datasets

    shaped = shape_for_student(dataset, chat=chat)
    teacher_prompts = dataset["teacher_prompt"] if kd.teacher_logits_on == "teacher_prompt" else None
    topks = dataset["teacher_topk"] if kd.teacher_from == "corpus" else None
    token_map, k = None, 0
    if topks is not None:
        token_map = TokenMap(tokenizer)
        k = max((len(a) for t in topks if t for a in t["top_token"]), default=1)
    encoder = Encoder(tokenizer, chat, max_length, token_map, max(k, 1))
    rows = []
    for i, (prompt, completion) in enumerate(zip(shaped["prompt"], shaped["completion"])):
        if topks is not None and not topks[i]:
            continue
        theirs = _shape_prompt(teacher_prompts[i], chat) if teacher_prompts is not None else None
        row = encoder.encode(prompt, completion, theirs, topks[i] if topks is not None else None)
        if row is not None:
            rows.append(row)
    if not rows:
        raise TrainError("no record is left to train on (every prompt fills max_length, or no record has the "
                         "teacher's top-k log-probabilities)")
    return datasets.Dataset.from_list(rows), len(dataset) - len(rows)


def _shape_prompt(prompt: str | None, chat: bool) -> Any:
    if prompt is None:
        raise TrainError("a record has no teacher_prompt (teacher_logits_on: teacher_prompt needs one for each)")
    return chat_pair(prompt, "")[0] if chat else plain_pair(prompt, "")[0]


# ---------------------------------------------------------------------------------------------
# models


def load_teacher(teacher: str) -> tuple[Any, Any, str]:
    """The teacher in eval mode, its tokenizer and where it was loaded from."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from evals.models import ModelError, default_device, resolve_model, torch_dtype

    try:
        source = resolve_model(teacher)
    except ModelError as exc:
        raise TrainError(f"teacher: {exc}") from exc
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=torch_dtype("auto", default_device()))
    except (OSError, ValueError) as exc:
        raise TrainError(f"cannot load the teacher {teacher!r} from {source}: {_first_line(exc)}") from exc
    model.eval().requires_grad_(False)
    return model, tokenizer, source


def vocab_size(model: Any) -> int:
    return int(model.config.get_text_config().vocab_size)


def check_vocabularies(student: Any, student_tok: Any, student_name: str, teacher: Any, teacher_tok: Any,
                       teacher_name: str) -> None:
    """The loss compares whole next-token distributions: one vocabulary, one tokenizer."""
    s, t = vocab_size(student), vocab_size(teacher)
    if s != t:
        raise TrainError(f"the teacher {teacher_name!r} has a vocabulary of {t} tokens and the student "
                         f"{student_name!r} one of {s}: KD compares whole next-token distributions, so they must "
                         "share one vocabulary")
    if student_tok.get_vocab() != teacher_tok.get_vocab():
        raise TrainError(f"the teacher {teacher_name!r} and the student {student_name!r} both have {s} tokens but "
                         "different tokenizers: KD needs one tokenizer")


# ---------------------------------------------------------------------------------------------
# TRL


def gkd_config(config: SFTRunConfig, out_dir: Path, kd: KDSettings) -> Any:
    """``GKDConfig``: the SFT values of the run, off-policy unless ``lmbda`` > 0, no sequence-level KD."""
    from trainers.kd_trainer import GKDConfig

    values = {**sft_values(config, out_dir), **config.sft_args, "lmbda": kd.lmbda, "beta": kd.beta,
              "seq_kd": False, "max_new_tokens": kd.max_new_tokens, "temperature": kd.temperature,
              "disable_dropout": True}
    try:
        return GKDConfig(**values)
    except (TypeError, ValueError) as exc:
        raise TrainError(f"invalid training settings: {_first_line(exc)}") from exc


def make_trainer(model: Any, teacher: Any, tokenizer: Any, rows: Any, args: Any, config: SFTRunConfig,
                 kd: KDSettings, lora: bool) -> Any:
    import contextlib
    import sys

    from trainers.kd_trainer import KDTrainer, TopKTrainer

    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    common = dict(model=model, args=args, data_collator=KDCollator(tokenizer.pad_token_id), train_dataset=rows,
                  processing_class=tokenizer, peft_config=lora_config(config) if lora else None,
                  loss=kd.loss_settings())
    with contextlib.redirect_stdout(sys.stderr):
        if teacher is None:
            return TopKTrainer(**common)
        return KDTrainer(teacher_model=teacher, **common)
