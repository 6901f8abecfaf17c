"""Fixtures for trainer tests: one small corpus compiled against a loopback teacher into a real DuckDB
store (once per session), its export in the three formats, and small hand-made datasets."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.compiler.conftest import STAND, STARTER, reference_answerer, run_cli, starter_tasks
from tests.loopback import LoopbackServer

CORPUS = "train-test"


@dataclass(frozen=True)
class Corpus:
    store: Path
    name: str
    version: int
    fingerprint: str
    export: Path          # hf export (save_to_disk + distillc.json)
    parquet: Path
    jsonl: Path


def _compile(directory: Path, url: str) -> tuple[Path, dict]:
    recipe = directory / "recipe.yaml"
    recipe.write_text(STAND.format(name=CORPUS, tasks=STARTER, limit=12, url=url, n=1,
                                   temperature=0.5, max_per_task=1))
    store = directory / "store.duckdb"
    result = run_cli("compile", recipe, "--store", store, "--json")
    assert result.code == 0, result.err
    return store, result.json()


def _export(store: Path, out: Path, fmt: str) -> Path:
    result = run_cli("export", CORPUS, out, "--format", fmt, "--store", store)
    assert result.code == 0, result.err
    return out


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    """A StanD corpus of the starter tasks (teacher = their reference solutions), exported."""
    os.environ.setdefault("OPENAI_API_KEY", "test-key")
    directory = tmp_path_factory.mktemp("corpus")
    with LoopbackServer(answer=reference_answerer(starter_tasks())) as server:
        store, info = _compile(directory, server.url)
    return Corpus(store, CORPUS, info["version"], info["fingerprint"],
                  _export(store, directory / "hf", "hf"), _export(store, directory / "pq", "parquet"),
                  _export(store, directory / "jl", "jsonl"))


def pc_rows(n: int = 12, variant: str = "StanD") -> list[dict]:
    """Small prompt/completion rows whose prompt and completion meet at a clean token boundary."""
    return [{"prompt": f"Write a function that returns {i} plus n.",
             "completion": f"```python\ndef f(n):\n    return n + {i}\n```",
             "task_id": f"t/{i}", "variant": variant} for i in range(n)]


def message_rows(n: int = 8) -> list[dict]:
    return [{"messages": [
        {"role": "system", "content": "You write short Python."},
        {"role": "user", "content": f"Return n times {i}."},
        {"role": "assistant", "content": f"def g(n):\n    return n * {i}\n"}]} for i in range(n)]
