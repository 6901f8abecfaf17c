"""Corpus version → files: a Hugging Face dataset on disk (``datasets.load_from_disk``), parquet or
JSONL, in TRL's column conventions. Written to a temporary directory and renamed into place, so a
failed export leaves nothing half-written.

An ``hf`` export is always one ``datasets.Dataset`` at the top of ``OUT``, so
``SFTTrainer(train_dataset=load_from_disk(OUT))`` trains on it unchanged. A corpus with several
variants (PERsD's training sets) puts its default variant there (the first of the methods' preferred variants, then StanD,
it has, else the first by name) and every other variant in ``OUT/variants/<NAME>/``, each a
Dataset too; ``distillc.json`` lists them under ``variant_dirs``. ``--variant NAME`` exports one."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import polars as pl

from compiler.errors import DistillcError
from compiler.store import outputs
from compiler.store.db import Store
from compiler.store.versions import Version

TRL_COLUMNS = ("prompt", "completion", "messages", "chosen", "rejected")
VARIANTS_DIR = "variants"
META_COLUMNS = ("task_id", "variant", "source", "row_id")
METHOD_COLUMNS = ("cycle", "rejected_error_types")     # SODA's: a record's cycle, a pair's error types
KD_COLUMNS = ("teacher_prompt", "teacher_topk")   # distillation records: the teacher's side


def records(store: Store, version: Version, variant: str | None = None) -> pl.DataFrame:
    """The version's training records (TRL columns + task_id, variant, source, row_id)."""
    frame = outputs.load_output(store, version.fingerprint)
    if variant is not None:
        have = sorted(frame["variant"].unique().to_list()) if "variant" in frame.columns else []
        if variant not in have:
            raise DistillcError(f"{version.ref} has no variant {variant!r} (variants: {', '.join(have) or 'none'})")
        frame = frame.filter(pl.col("variant") == variant)
    keep = [c for c in (*TRL_COLUMNS, *KD_COLUMNS, *META_COLUMNS, *METHOD_COLUMNS) if c in frame.columns]
    if not any(c in frame.columns for c in TRL_COLUMNS):
        raise DistillcError(f"{version.ref} holds no training records (end the recipe with a `format` stage)")
    if frame.height == 0:       # an empty hf dataset does not even load: refuse rather than write one
        raise DistillcError(f"{version.ref} holds no training records: every row was dropped before the end "
                            f"(`distillc show {version.corpus}` says where)")
    return frame.select(keep)


def variants(frame: pl.DataFrame) -> list[str]:
    return sorted(frame["variant"].unique().to_list()) if "variant" in frame.columns else []


def variant_order(name: str) -> tuple[int, str]:
    """Sort key: the preferred variants first (the first is the default), then by name."""
    from compiler.methods import preferred_variants

    preferred = preferred_variants()
    return (preferred.index(name) if name in preferred else len(preferred), name)


def variant_dirs(names: list[str]) -> dict[str, str]:
    """``variants/<NAME>`` per variant; a name is free text (the format stage's ``variant``), so each
    directory is made one safe path component, distinct from the others."""
    dirs: dict[str, str] = {}
    for name in names:
        base = re.sub(r"[^A-Za-z0-9._+-]", "_", name).lstrip(".") or "_"
        sub, k = f"{VARIANTS_DIR}/{base}", 1
        while sub in dirs.values():
            k += 1
            sub = f"{VARIANTS_DIR}/{base}-{k}"
        dirs[name] = sub
    return dirs


def to_dataset(frame: pl.DataFrame):
    """A ``datasets.Dataset`` of the rows, without the TRL and method columns no row of them fills (a
    preference variant has no ``completion``, an SFT variant no ``chosen``/``rejected``), so each
    variant holds exactly its own TRL columns."""
    import datasets

    optional = (*TRL_COLUMNS, *METHOD_COLUMNS)
    empty = [c for c in frame.columns if c in optional and frame.height and frame[c].null_count() == frame.height]
    return datasets.Dataset.from_list(frame.drop(empty).to_dicts())


def write(frame: pl.DataFrame, out: Path, fmt: str, meta: dict[str, Any]) -> None:
    if fmt == "hf":
        names = sorted(variants(frame), key=variant_order)
        if len(names) > 1:
            meta["default_variant"] = names[0]
            meta["variant_dirs"] = variant_dirs(names[1:])
            for name in names:
                sub = meta["variant_dirs"].get(name)
                to_dataset(frame.filter(pl.col("variant") == name)).save_to_disk(str(out / sub if sub else out))
        else:
            to_dataset(frame).save_to_disk(str(out))
    elif fmt == "parquet":
        out.mkdir(parents=True)
        frame.write_parquet(out / "data.parquet")
    elif fmt == "jsonl":
        out.mkdir(parents=True)
        frame.write_ndjson(out / "data.jsonl")
    else:  # pragma: no cover - argparse restricts choices
        raise DistillcError(f"unknown export format {fmt!r}")
    (out / "distillc.json").write_text(json.dumps(meta, indent=2, default=str) + "\n", encoding="utf-8")


def export_version(store: Store, version: Version, out: str | os.PathLike[str], fmt: str, *,
                   variant: str | None = None, overwrite: bool = False) -> dict[str, Any]:
    out = Path(out)
    if out.exists() and any(out.iterdir() if out.is_dir() else [out]) and not overwrite:
        raise DistillcError(f"{out}: already exists (pass --overwrite to replace it)")
    frame = records(store, version, variant)
    meta = {"corpus": version.corpus, "version": version.version, "fingerprint": version.fingerprint,
            "variant": variant, "format": fmt, "rows": frame.height, "variants": variants(frame),
            "recipe": version.recipe, "library_versions": version.library_versions}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        write(frame, tmp / "x", fmt, meta)
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        os.replace(tmp / "x", out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    keys = ("corpus", "version", "variant", "format", "rows", "variants", "default_variant", "variant_dirs")
    return {**{k: meta[k] for k in keys if k in meta}, "path": str(out)}
