"""Publish a corpus version to the Hugging Face Hub: one dataset config per variant, the dataset card
with its chart images, the recipe and the version record, as one commit per version and a tag ``v<N>``.

The upload is retry-safe: a version whose tag exists is not uploaded again; a commit that landed
without its tag (a crash in between) is found by the corpus fingerprint in its message and tagged
instead of committed twice; transient Hub errors are retried with backoff.
"""

from __future__ import annotations

import io
import os
import random
import time
from pathlib import Path
from typing import Any, Callable

import polars as pl

from compiler.card import IMAGES, card_data, card_images, render_card, version_json
from compiler.errors import DistillcError
from compiler.export import records, variant_order, variants
from compiler.store.db import Store
from compiler.store.versions import Version

RETRIES = 5


def hf_api(token: str | None = None) -> Any:
    """The Hub client (the one place tests replace with a fake)."""
    from huggingface_hub import HfApi

    return HfApi(token=token or os.environ.get("HF_TOKEN"))


def build_files(store: Store, version: Version) -> dict[str, bytes]:
    """Every file of the upload, by its path in the repository."""
    frame = records(store, version)
    names = sorted(variants(frame) or ["default"], key=variant_order)   # the first is the default config
    files: dict[str, bytes] = {}
    layout: dict[str, list[str]] = {}
    for name in names:
        part = frame.filter(pl.col("variant") == name) if "variant" in frame.columns else frame
        path = f"data/{name}/train-00000-of-00001.parquet"
        buf = io.BytesIO()
        part.write_parquet(buf)
        files[path] = buf.getvalue()
        layout[name] = [f"data/{name}/*.parquet"]
    data = card_data(store, version)
    files.update(card_images(data))
    files["README.md"] = render_card(data, {k: v[0] for k, v in layout.items()}, IMAGES).encode("utf-8")
    files["distillc/recipe.yaml"] = version.recipe_yaml.encode("utf-8")
    files["distillc/version.json"] = version_json(data).encode("utf-8")
    return files


def write_dry_run(files: dict[str, bytes], out: Path) -> None:
    if out.exists() and any(out.iterdir()):
        raise DistillcError(f"{out}: already exists and is not empty")
    for path, content in files.items():
        target = out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)


def _transient(exc: Exception) -> bool:
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status is not None:
        return status == 429 or status >= 500
    return isinstance(exc, (ConnectionError, TimeoutError, OSError))


def with_retries(fn: Callable[[], Any], what: str, sleep: Callable[[float], None] = time.sleep) -> Any:
    for attempt in range(RETRIES):
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - classified below
            if not _transient(exc) or attempt == RETRIES - 1:
                raise DistillcError(f"Hub {what} failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
            sleep(min(30.0, 2 ** attempt) * (0.5 + random.random()))
    raise AssertionError("unreachable")


def upload(api: Any, repo: str, version: Version, files: dict[str, bytes], *, private: bool,
           sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    tag = f"v{version.version}"
    with_retries(lambda: api.create_repo(repo, repo_type="dataset", private=private, exist_ok=True), "create_repo", sleep)
    refs = with_retries(lambda: api.list_repo_refs(repo, repo_type="dataset"), "list_repo_refs", sleep)
    if tag in {t.name for t in getattr(refs, "tags", [])}:
        return {"repo": repo, "tag": tag, "commit": None, "uploaded": False, "reason": "already published"}
    marker = f"[{version.fingerprint}]"
    commits = with_retries(lambda: api.list_repo_commits(repo, repo_type="dataset"), "list_repo_commits", sleep)
    landed = next((c for c in commits if marker in (c.title or "")), None)
    if landed is not None:
        commit_id = landed.commit_id
    else:
        existing = with_retries(lambda: api.list_repo_files(repo, repo_type="dataset"), "list_repo_files", sleep)
        stale = [p for p in existing if p.startswith(("data/", "images/")) and p not in files]
        ops = [CommitOperationDelete(path_in_repo=p) for p in stale]
        ops += [CommitOperationAdd(path_in_repo=p, path_or_fileobj=c) for p, c in sorted(files.items())]
        message = f"{version.corpus}@{version.version} {marker}"
        info = with_retries(lambda: api.create_commit(repo, ops, commit_message=message, repo_type="dataset"),
                            "create_commit", sleep)
        commit_id = info.oid
    with_retries(lambda: api.create_tag(repo, tag=tag, revision=commit_id, repo_type="dataset", exist_ok=True),
                 "create_tag", sleep)
    return {"repo": repo, "tag": tag, "commit": commit_id, "uploaded": landed is None,
            "reason": "tagged an earlier commit" if landed is not None else "committed"}
