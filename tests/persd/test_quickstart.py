"""The quickstart recipe end to end on the embedded SmolLM2-135M (student and teacher), offline."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from compiler.store.db import Store
from compiler.store.versions import resolve
from tests.compiler.conftest import run_cli

pytestmark = pytest.mark.slow

QUICKSTART = Path(__file__).resolve().parents[2] / "recipes" / "quickstart.yaml"


def test_quickstart_compiles_offline_and_shows_its_funnel(tmp_path, monkeypatch):
    monkeypatch.setenv("DISTILLC_PROGRESS", "0")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    store = tmp_path / "store.duckdb"
    started = time.perf_counter()
    r = run_cli("compile", QUICKSTART, "--store", store)
    print(f"quickstart compile: {time.perf_counter() - started:.0f} s")
    assert r.code == 0, r.err

    shown = run_cli("show", "quickstart", "--store", store)
    assert shown.code == 0, shown.err
    print(shown.out)
    attempts = re.search(r"persd: tasks=33  attempts=33 \(passed (\d+), failed (\d+)\)", shown.out)
    assert attempts, shown.out
    passed, failed = map(int, attempts.groups())
    refinements = re.search(r"persd: refinements requested=(\d+)  parsed=(\d+)  passed=(\d+)", shown.out)
    assert refinements and int(refinements.group(1)) == failed
    assert re.search(r"persd: kept .*StanD=33", shown.out)

    with Store.open_readonly(str(store)) as st:
        v = resolve(st, "quickstart")
        calls = dict(st.con.execute("SELECT stage, count(*) FROM llm_calls GROUP BY 1").fetchall())
    assert calls.get("student_attempt") == 33 and calls.get("teacher_refine") == failed
    assert "synthesize_tests" not in calls and v.rows >= 33

    run_help_examples(store, tmp_path)


def run_help_examples(store: Path, tmp_path: Path) -> None:
    """Every command's --help example runs as printed once the quickstart is compiled (paths inside
    the repository made absolute, outputs sent to a temporary directory)."""
    import os
    import subprocess
    import sys

    from compiler.cli import COMMANDS, _load

    root = QUICKSTART.parents[1]
    env = {**os.environ, "DISTILLC_STORE": str(store), "DISTILLC_MODELS": str(root / "data" / "models"),
           "DISTILLC_PROGRESS": "0", "DISTILLC_TORCH_THREADS": "1"}
    work = tmp_path / "examples"
    work.mkdir()
    for name in COMMANDS:
        example = _load(name).EXAMPLE
        command = (example.replace("recipes/", f"{root}/recipes/").replace("trainers/configs/", f"{root}/trainers/configs/")
                   .replace("data/", f"{work}/data/").replace("distillc ", f"{sys.executable} -m compiler.cli "))
        p = subprocess.run(["bash", "-c", command], cwd=work, env=env, capture_output=True, text=True, timeout=900)
        assert p.returncode == 0, f"{name} example failed: {example}\n{p.stderr[-2000:]}"
