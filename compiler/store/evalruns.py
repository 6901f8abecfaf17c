"""Evaluation runs in the store: one ``eval_runs`` row per ``distillc eval``, linked to the corpus
version the model was trained on when the model directory carries the trainer's record
(``distillc_train.json``). A run counts as *linked* when this store holds that version (same
corpus and fingerprint)."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compiler.store.db import Store
from compiler.store.versions import find_by_fingerprint

TRAIN_RECORD = "distillc_train.json"   # written by trainers/ into every trained model directory

_COLUMNS = ("run_id", "model", "model_path", "student", "benchmark", "subset", "prompt_format", "n",
            "temperature", "top_p", "multistep", "problems", "pass_at_k", "per_step", "settings", "data",
            "corpus", "version", "fingerprint", "variant", "training", "out_dir", "samples_path",
            "results_path", "seconds", "isolation", "library_versions")
_JSON = {"pass_at_k", "per_step", "settings", "data", "training", "library_versions"}


@dataclass(frozen=True)
class EvalRun:
    """One stored evaluation run (JSON columns decoded)."""

    run_id: str
    model: str
    model_path: str | None
    student: str | None
    benchmark: str
    subset: str | None
    prompt_format: str
    n: int
    temperature: float
    top_p: float
    multistep: int
    problems: int
    pass_at_k: dict[str, float]
    per_step: list[dict[str, float]]
    settings: dict[str, Any]
    data: dict[str, Any]
    corpus: str | None
    version: int | None
    fingerprint: str | None
    variant: str | None
    training: dict[str, Any] | None
    out_dir: str
    samples_path: str
    results_path: str
    seconds: float
    isolation: str | None
    library_versions: dict[str, str]
    created_at: Any
    linked: bool = False

    @property
    def corpus_ref(self) -> str | None:
        return f"{self.corpus}@{self.version}" if self.corpus and self.version is not None else self.corpus

    def to_dict(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in (*_COLUMNS, "linked")}
        out["created_at"] = str(self.created_at)
        return out


def new_run_id() -> str:
    """A sortable, unique run id: ``YYYYmmdd-HHMMSS-xxxxxx``."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


def training_record(model: str) -> dict[str, Any] | None:
    """The trainer's record of a local model directory, or None (not trained here, or a Hub id)."""
    path = Path(model).expanduser() / TRAIN_RECORD
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def link(store: Store, record: dict[str, Any] | None) -> dict[str, Any]:
    """Corpus, version, fingerprint and variant of a training record, and whether this store holds
    that corpus version (same fingerprint; its version number is then the one kept)."""
    if not record:
        return {"corpus": None, "version": None, "fingerprint": None, "variant": None, "linked": False}
    corpus, fp = record.get("corpus"), record.get("fingerprint")
    found = find_by_fingerprint(store, corpus, fp) if corpus and fp else None
    version = found.version if found else record.get("version")
    return {"corpus": corpus, "version": int(version) if version is not None else None,
            "fingerprint": fp, "variant": record.get("variant"), "linked": found is not None}


def insert_run(store: Store, row: dict[str, Any]) -> None:
    """Store one run; ``row`` has every column of ``eval_runs`` but ``created_at``."""
    values = [json.dumps(row.get(c), default=str) if c in _JSON else row.get(c) for c in _COLUMNS]
    marks = ", ".join("?" for _ in _COLUMNS)
    with store.transaction() as con:
        con.execute(f"INSERT INTO eval_runs ({', '.join(_COLUMNS)}, created_at) VALUES ({marks}, now())", values)


def list_runs(store: Store, *, benchmark: str | None = None) -> list[EvalRun]:
    """Runs in creation order, each marked linked when the store holds its corpus version."""
    where, args = ("WHERE r.benchmark = ?", [benchmark]) if benchmark else ("", [])
    cols = ", ".join(f"r.{c}" for c in _COLUMNS)
    rows = store.con.execute(
        f"SELECT {cols}, r.created_at, v.version IS NOT NULL FROM eval_runs r "
        f"LEFT JOIN versions v ON v.corpus = r.corpus AND v.fingerprint = r.fingerprint "
        f"{where} ORDER BY r.created_at, r.run_id", args).fetchall()
    return [_decode(row) for row in rows]


def get_run(store: Store, run_id: str) -> EvalRun | None:
    return next((r for r in list_runs(store) if r.run_id == run_id), None)


def _decode(row: tuple) -> EvalRun:
    values = dict(zip(_COLUMNS, row[:len(_COLUMNS)]))
    for name in _JSON:
        values[name] = json.loads(values[name]) if values[name] is not None else None
    return EvalRun(**values, created_at=row[len(_COLUMNS)], linked=bool(row[-1]))


__all__ = ["EvalRun", "TRAIN_RECORD", "get_run", "insert_run", "link", "list_runs", "new_run_id", "training_record"]
