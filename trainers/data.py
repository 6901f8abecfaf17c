"""Training data: load an exported corpus (or any dataset in TRL's columns), pick a variant, read the
corpus provenance written beside it, and shape the rows for the student's prompt format.

Accepted sources: a ``datasets.Dataset``; a ``save_to_disk`` directory (a Dataset, or a DatasetDict
with one split per variant); a ``distillc export --format hf`` directory of a multi-variant corpus
(its default variant at the top, the others under ``variants/<NAME>/``); an export directory holding
``data.parquet`` or ``data.jsonl``; a parquet / JSON(L) file; a Hugging Face
Hub dataset id (``datasets.load_dataset``). ``distillc export`` writes ``distillc.json`` into the
directory; its corpus, version, fingerprint, variant and recipe travel into the trained model's record.

Shaping (TRL's SFTTrainer then masks the prompt, so the loss covers completion tokens only):

- chat student, ``prompt``/``completion`` strings: the prompt becomes one user message and the
  completion one assistant message, so TRL renders them with the chat template;
- chat student, ``messages``: everything before the last (assistant) message is the prompt, the last
  message is the completion;
- plain student: strings stay as they are (TRL appends EOS to the completion); ``messages`` are joined
  with blank lines, as ``evals.generate`` renders messages for a model without a chat template.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainers.errors import TrainError

EXPORT_META = "distillc.json"
PROVENANCE_KEYS = ("corpus", "version", "fingerprint", "variant", "recipe")
Message = dict[str, str]


@dataclass(frozen=True)
class TrainingData:
    """The rows to train on and where they came from."""

    dataset: Any  # datasets.Dataset
    provenance: dict[str, Any] = field(default_factory=dict)
    source: str | None = None

    @property
    def format(self) -> str:
        return data_format(self.dataset.column_names) or "unknown"


# ---------------------------------------------------------------------------------------------
# loading


def load_training_data(source: Any, *, variant: str | None = None, dataset_config: str | None = None,
                       split: str = "train", provenance: dict[str, Any] | None = None,
                       kind: str = "SFT", preference: bool = False) -> TrainingData:
    """Load ``source`` (see the module docstring), select ``variant``, and merge the export's
    ``distillc.json`` with ``provenance`` (explicit values win). ``preference``: the rows must be
    preference pairs (DPO) rather than completions; ``kind`` names the training in errors about the
    rows' format."""
    import datasets

    if isinstance(source, datasets.Dataset):
        loaded, meta, where = source, {}, None
    else:
        where = str(source)
        loaded, meta = _load_source(where, dataset_config, split, variant)
    dataset, chosen = select_variant(loaded, variant or meta.get("variant"), where or "the dataset")
    dataset = without_empty_columns(dataset)
    if len(dataset) == 0:
        raise TrainError(f"{where or 'the dataset'}: no training rows"
                         + (f" for variant {chosen!r}" if chosen else ""))
    what = (where or "the dataset") + (f" (variant {chosen})" if chosen else "")
    if preference:
        preference_format(dataset.column_names, what)
    else:
        dataset_format(dataset.column_names, what, kind)
    merged = {**{k: meta.get(k) for k in PROVENANCE_KEYS}, **(provenance or {})}
    merged["variant"] = (provenance or {}).get("variant") or chosen
    merged["variants"] = variant_names(dataset)
    return TrainingData(dataset, merged, where)


def _load_source(source: str, dataset_config: str | None, split: str,
                 variant: str | None = None) -> tuple[Any, dict[str, Any]]:
    path = Path(source).expanduser()
    if path.is_dir():
        meta = read_export_meta(path)
        return _load_dir(_variant_dir(path, meta, variant, source)), meta
    if path.is_file():
        return _load_file(path, split), {}
    if source.startswith(("/", ".", "~")) or source.count("/") > 1:
        raise TrainError(f"{source}: no such dataset directory or file")
    return _load_hub(source, dataset_config, split), {}


def _variant_dir(path: Path, meta: dict[str, Any], variant: str | None, where: str) -> Path:
    """Where a multi-variant export keeps ``variant`` (the top holds the default one)."""
    dirs = meta.get("variant_dirs")
    if not isinstance(dirs, dict):
        return path
    names = sorted([str(meta.get("default_variant")), *dirs])
    if not variant:
        raise _several_variants(where, names)
    if variant in dirs:
        return path / dirs[variant]
    if variant != meta.get("default_variant"):
        raise _no_variant(where, variant, names)
    return path


def read_export_meta(directory: Path) -> dict[str, Any]:
    """The ``distillc.json`` that ``distillc export`` writes beside the data ({} when absent)."""
    meta = directory / EXPORT_META
    if not meta.is_file():
        return {}
    try:
        return json.loads(meta.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise TrainError(f"{meta}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc


def _load_dir(path: Path) -> Any:
    import datasets

    if (path / "dataset_dict.json").is_file() or (path / "state.json").is_file():
        return datasets.load_from_disk(str(path))
    for name in ("data.parquet", "data.jsonl"):
        if (path / name).is_file():
            return _load_file(path / name, "train")
    raise TrainError(f"{path}: not a dataset directory (no save_to_disk dataset, data.parquet or data.jsonl)")


def _load_file(path: Path, split: str) -> Any:
    import datasets

    builder = {".parquet": "parquet", ".jsonl": "json", ".json": "json"}.get(path.suffix)
    if builder is None:
        raise TrainError(f"{path}: expected a .parquet, .jsonl or .json file")
    try:
        return datasets.load_dataset(builder, data_files=str(path), split=split)
    except (ValueError, OSError) as exc:
        raise TrainError(f"{path}: cannot read ({_first_line(exc)})") from exc


def _load_hub(name: str, config: str | None, split: str) -> Any:
    import datasets

    try:
        return datasets.load_dataset(name, config, split=split)
    except Exception as exc:  # datasets raises many types (connection, missing config, offline)
        raise TrainError(f"dataset {name!r}: no such local directory or file, and the Hugging Face Hub "
                         f"cannot provide it ({_first_line(exc)})") from exc


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


# ---------------------------------------------------------------------------------------------
# variants


def select_variant(loaded: Any, variant: str | None, where: str) -> tuple[Any, str | None]:
    """One Dataset from a Dataset or DatasetDict; ``variant`` names a split or a ``variant`` value."""
    import datasets

    if isinstance(loaded, datasets.DatasetDict):
        return _from_dict(loaded, variant, where)
    if variant is None:
        names = variant_names(loaded)
        return loaded, names[0] if len(names) == 1 else None
    have = variant_names(loaded)
    if variant not in have:
        raise _no_variant(where, variant, have)
    return loaded.filter(lambda v: v == variant, input_columns="variant"), variant


def _from_dict(loaded: Any, variant: str | None, where: str) -> tuple[Any, str]:
    names = sorted(loaded)
    if variant is None and len(names) == 1:
        variant = names[0]
    if variant is None:
        raise _several_variants(where, names)
    if variant not in loaded:
        raise _no_variant(where, variant, names)
    return loaded[variant], variant


def _several_variants(where: str, names: list[str]) -> TrainError:
    return TrainError(f"{where} holds several variants ({', '.join(names)}): choose one "
                      f"(CORPUS:VARIANT, DIR:VARIANT or variant=...)")


def _no_variant(where: str, variant: str, names: list[str]) -> TrainError:
    return TrainError(f"{where} has no variant {variant!r} (variants: {', '.join(names) or 'none'})")


def variant_names(dataset: Any) -> list[str]:
    if "variant" not in dataset.column_names:
        return []
    return sorted({v for v in dataset["variant"] if v is not None})


# ---------------------------------------------------------------------------------------------
# shaping for the student


TRL_COLUMNS = ("prompt", "completion", "messages", "chosen", "rejected")


def without_empty_columns(dataset: Any) -> Any:
    """``dataset`` without the TRL columns that hold no value in any row: in an export of several
    variants each column exists for all of them, so a ``messages`` variant also has ``prompt`` and
    ``completion`` columns of nulls, which must not decide its format."""
    empty = [c for c in TRL_COLUMNS if c in dataset.column_names and all(v is None for v in dataset[c])]
    return dataset.remove_columns(empty) if empty else dataset


def data_format(columns: list[str]) -> str | None:
    """``preference``, ``prompt_completion`` or ``messages`` by the columns; None for none of them."""
    if {"prompt", "chosen", "rejected"} <= set(columns):
        return "preference"
    if "prompt" in columns and "completion" in columns:
        return "prompt_completion"
    return "messages" if "messages" in columns else None


def dataset_format(columns: list[str], where: str | None = None, kind: str = "SFT") -> str:
    """``prompt_completion`` or ``messages``; anything else has no completions to train on."""
    found = data_format(columns)
    if found in ("prompt_completion", "messages"):
        return found
    what = where or "the dataset"
    if "chosen" in columns and "rejected" in columns:
        raise TrainError(f"{what} holds preference pairs (prompt/chosen/rejected): that is DPO data, "
                         f"not {kind} data")
    raise TrainError(f"{what} has no completions to train on: no prompt/completion or messages columns "
                     f"(columns: {', '.join(columns)})")


def shape_for_student(dataset: Any, *, chat: bool) -> Any:
    """A new Dataset with only ``prompt`` and ``completion``, conversational when ``chat``."""
    import datasets

    fmt = dataset_format(dataset.column_names)
    columns = ("messages",) if fmt == "messages" else ("prompt", "completion")
    for column in columns:
        missing = next((i for i, v in enumerate(dataset[column]) if v is None), None)
        if missing is not None:
            raise TrainError(f"row {missing} has no {column} (null): nothing to train on there")
    if fmt == "messages":
        pairs = [split_messages(_messages(m)) for m in dataset["messages"]]
    else:
        pairs = list(zip(dataset["prompt"], dataset["completion"]))
    shaped = [chat_pair(p, c) if chat else plain_pair(p, c) for p, c in pairs]
    return datasets.Dataset.from_dict({"prompt": [p for p, _ in shaped], "completion": [c for _, c in shaped]})


def preference_format(columns: list[str], where: str | None = None) -> str:
    """``preference`` (prompt, chosen, rejected); anything else cannot be trained with DPO."""
    if data_format(columns) == "preference":
        return "preference"
    raise TrainError(f"{where or 'the dataset'} holds no preference pairs (prompt/chosen/rejected) for DPO "
                     f"(columns: {', '.join(columns)})")


def shape_preferences(dataset: Any, *, chat: bool) -> Any:
    """A new Dataset with only ``prompt``, ``chosen`` and ``rejected``: conversational when ``chat``
    (strings become a user and assistant messages), plain text otherwise (as :func:`plain_pair`)."""
    import datasets

    preference_format(dataset.column_names)
    shape = chat_pair if chat else plain_pair
    rows: dict[str, list[Any]] = {"prompt": [], "chosen": [], "rejected": []}
    for prompt, chosen, rejected in zip(dataset["prompt"], dataset["chosen"], dataset["rejected"]):
        p, c = shape(prompt, chosen)
        rows["prompt"].append(p)
        rows["chosen"].append(c)
        rows["rejected"].append(shape(prompt, rejected)[1])
    return datasets.Dataset.from_dict(rows)


def split_messages(messages: list[Message]) -> tuple[list[Message], list[Message]]:
    """(prompt messages, [final assistant message]); the conversation must end with the assistant."""
    if len(messages) < 2 or messages[-1]["role"] != "assistant":
        raise TrainError("a messages row must end with an assistant message after at least one prompt message")
    return messages[:-1], messages[-1:]


def chat_pair(prompt: Any, completion: Any) -> tuple[list[Message], list[Message]]:
    """Conversational prompt/completion: strings become a user and an assistant message."""
    if isinstance(prompt, str):
        prompt = [{"role": "user", "content": prompt}]
    if isinstance(completion, str):
        completion = [{"role": "assistant", "content": completion}]
    return _messages(prompt), _messages(completion)


def plain_pair(prompt: Any, completion: Any) -> tuple[str, str]:
    """Plain text: conversational parts are joined with blank lines, the completion keeping the
    separator that follows the prompt (so prompt + completion is the whole conversation)."""
    if isinstance(prompt, str) and isinstance(completion, str):
        return prompt, completion
    prompt_text = prompt if isinstance(prompt, str) else _join(_messages(prompt))
    completion_text = completion if isinstance(completion, str) else _join(_messages(completion))
    return prompt_text, "\n\n" + completion_text


def _join(messages: list[Message]) -> str:
    return "\n\n".join(m["content"] for m in messages)


def _messages(rows: Any) -> list[Message]:
    """Only role and content (Arrow structs can carry other, empty fields)."""
    return [{"role": str(m["role"]), "content": str(m["content"] or "")} for m in rows]
