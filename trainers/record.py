"""``distillc_train.json``: the record a trained model directory carries, so an evaluation of the
model can be linked back to the corpus version, recipe and settings that made it.

Written last, after the model and tokenizer: its presence marks a finished training run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from evals.libraries import installed_versions

RECORD = "distillc_train.json"
LIBRARIES = ("distillc", "torch", "transformers", "trl", "peft", "accelerate", "datasets", "tokenizers")


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries this artifact depends on."""
    return installed_versions(LIBRARIES)


def write_record(out_dir: Path, record: dict[str, Any]) -> Path:
    """Write the record atomically (a rename), so a reader never sees half of it."""
    path = out_dir / RECORD
    partial = out_dir / f".{RECORD}.tmp"
    partial.write_text(json.dumps(record, indent=2, default=str, ensure_ascii=False) + "\n", encoding="utf-8")
    partial.replace(path)
    return path


def read_record(model_dir: str | Path) -> dict[str, Any] | None:
    """The training record of a model directory, or None when the model was not trained here."""
    path = Path(model_dir) / RECORD
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def forget_record(out_dir: Path) -> None:
    """Remove a previous run's record before training into the same directory again."""
    (out_dir / RECORD).unlink(missing_ok=True)
