"""The offline AMR-Evol recipe end to end on the embedded SmolLM2-135M teacher and the embedded
all-MiniLM-L6-v2 embedder: it compiles, shows its funnel, and a rerun computes nothing."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.compiler.conftest import run_cli

pytestmark = pytest.mark.slow

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "amr-evol-offline.yaml"


def test_offline_recipe_compiles_and_shows_its_funnel(tmp_path, monkeypatch):
    monkeypatch.setenv("DISTILLC_PROGRESS", "0")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    store = tmp_path / "store.duckdb"
    started = time.perf_counter()
    r = run_cli("compile", RECIPE, "--store", store, "--json")
    print(f"amr-evol-offline compile: {time.perf_counter() - started:.0f} s")
    assert r.code == 0, r.err
    first = r.json()
    assert first["llm_calls"] > 0 and first["embeddings_computed"] > 0
    shown = run_cli("show", "amr-evol-offline", "--store", store)
    assert shown.code == 0, shown.err
    print(shown.out)
    assert re.search(r"amr-evol: instructions complex1=\d+, self_instruct=\d+  direct answers=\d+", shown.out)
    assert re.search(r"amr-evol: module database before=0 \(\+60 seeded\) at retrieval=60  after=6\d", shown.out)
    assert "amr-evol: cost per stage: self_instruct $0.0000" in shown.out
    again = run_cli("compile", RECIPE, "--store", store, "--json").json()
    assert (again["stages_run"], again["llm_calls"], again["embeddings_computed"]) == (0, 0, 0)
