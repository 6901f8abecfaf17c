"""The Ray executor on a local Ray instance: the same corpus and the same ledger as the local executor,
the driver as the only writer (a kill -9 of it costs at most what was handed to workers), and clear
one-line errors for a cluster that does not answer or a missing extra."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.compiler.conftest import ROOT, STARTER, file_digest, reference_answerer, run_cli, starter_tasks
from tests.loopback import LoopbackServer

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'distillc[ray]')")

RECIPE = """\
name: rayed
sources:
  - kind: jsonl
    path: {tasks}
teacher:
  backend: openai
  model: gpt-4o-mini
  base_url: {url}
  max_concurrency: 8
  prices: {{input: 1.0, output: 2.0}}
stages:
  - uses: teacher_answer
    with: {{n: 2, temperature: 0.5}}
  - uses: extract_code
  - uses: execute
  - uses: filter
  - uses: dedup
  - uses: format
"""


def env() -> dict[str, str]:
    return {**os.environ, "OPENAI_API_KEY": "k", "DISTILLC_PROGRESS": "0"}


def compile_cmd(recipe, store, *extra) -> list[str]:
    return [sys.executable, "-m", "compiler.cli", "compile", str(recipe), "--store", str(store), "--json",
            "--partition-rows", "8", *extra]


def rows_and_totals(store) -> tuple[list, dict]:
    out = subprocess.run([sys.executable, "-m", "compiler.cli", "export", "rayed", str(store) + ".jsonl.d",
                          "--store", str(store), "--format", "jsonl", "--overwrite"], cwd=ROOT, env=env(),
                         capture_output=True)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(x) for x in open(str(store) + ".jsonl.d/data.jsonl")]
    cost = subprocess.run([sys.executable, "-m", "compiler.cli", "cost", "rayed", "--store", str(store), "--json"],
                          cwd=ROOT, env=env(), capture_output=True, text=True)
    total = json.loads(cost.stdout)["total"]
    return rows, {k: total[k] for k in ("calls", "prompt_tokens", "completion_tokens", "usd")}


@pytest.fixture(scope="module")
def server():
    with LoopbackServer(answer=reference_answerer(starter_tasks()), latency=0.02) as s:
        yield s


@pytest.fixture(scope="module")
def compiled(tmp_path_factory, server):
    tmp = tmp_path_factory.mktemp("ray")
    recipe = tmp / "rayed.yaml"
    recipe.write_text(RECIPE.format(tasks=STARTER, url=server.url))
    results = {}
    for executor in ("local", "ray"):
        p = subprocess.run(compile_cmd(recipe, tmp / f"{executor}.duckdb", "--executor", executor), cwd=ROOT,
                           env=env(), capture_output=True, text=True, timeout=600)
        if executor == "ray" and p.returncode != 0 and "cannot start or join" in p.stderr:
            pytest.skip(f"a local Ray instance cannot start here: {p.stderr.strip()}")
        assert p.returncode == 0, p.stderr[-3000:]
        results[executor] = json.loads(p.stdout)
    return tmp, recipe, results


def test_the_ray_executor_builds_the_local_executors_corpus_and_ledger(compiled):
    tmp, _, results = compiled
    assert results["ray"]["fingerprint"] == results["local"]["fingerprint"]
    local_rows, local_totals = rows_and_totals(tmp / "local.duckdb")
    ray_rows, ray_totals = rows_and_totals(tmp / "ray.duckdb")
    assert ray_rows == local_rows and len(local_rows) > 20
    assert ray_totals == local_totals and local_totals["calls"] == 2 * len(starter_tasks())


def test_an_unchanged_rerun_on_ray_is_free(compiled):
    tmp, recipe, _ = compiled
    p = subprocess.run(compile_cmd(recipe, tmp / "ray.duckdb", "--executor", "ray"), cwd=ROOT, env=env(),
                       capture_output=True, text=True, timeout=600)
    out = json.loads(p.stdout)
    assert out["llm_calls"] == 0 and out["stages_run"] == 0


def test_kill_minus_nine_of_the_driver_then_rerun(compiled, server, tmp_path):
    _, recipe, results = compiled
    store = tmp_path / "killed.duckdb"
    before = server.tally.answered
    proc = subprocess.Popen(compile_cmd(recipe, store, "--executor", "ray"), cwd=ROOT, env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while server.tally.answered < before + 20 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    first = server.tally.answered - before
    with __import__("compiler.store.db", fromlist=["Store"]).Store.open(store) as st:
        in_flight = st.con.execute("SELECT count(*) FROM llm_calls WHERE status = 'interrupted'").fetchall()[0][0]
        kept = st.con.execute("SELECT count(*) FROM llm_cache").fetchall()[0][0]
    assert kept < 2 * len(starter_tasks()), "the kill came too late to test anything"
    p = subprocess.run(compile_cmd(recipe, store, "--executor", "ray"), cwd=ROOT, env=env(), capture_output=True,
                       text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    assert json.loads(p.stdout)["fingerprint"] == results["local"]["fingerprint"]
    assert rows_and_totals(store)[0] == rows_and_totals(compiled[0] / "local.duckdb")[0]
    resent = server.tally.answered - before - 2 * len(starter_tasks())
    assert 0 <= resent <= in_flight, (first, in_flight)


def test_a_ray_address_that_does_not_answer_is_one_line_and_leaves_the_store(tmp_path, compiled):
    _, recipe, _ = compiled
    store = tmp_path / "s.duckdb"
    t0 = time.monotonic()
    r = run_cli("compile", recipe, "--store", store, "--executor", "ray", "--ray-address", "127.0.0.1:9")
    assert r.code == 1 and len(r.err.strip().splitlines()) == 1 and "no Ray cluster answers at 127.0.0.1:9" in r.err
    assert time.monotonic() - t0 < 30 and not store.exists()
    existing = compiled[0] / "local.duckdb"
    digest = file_digest(existing)
    r = run_cli("compile", recipe, "--store", existing, "--executor", "ray", "--ray-address", "127.0.0.1:9")
    assert r.code == 1 and file_digest(existing) == digest


def test_an_unknown_executor_is_one_line(tmp_path, compiled):
    r = run_cli("compile", compiled[1], "--store", tmp_path / "s.duckdb", "--executor", "spark")
    assert r.code == 1 and r.err.count("\n") == 1 and "invalid choice: 'spark'" in r.err


def test_ray_missing_names_the_extra(tmp_path, compiled, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    r = run_cli("compile", compiled[1], "--store", tmp_path / "s.duckdb", "--executor", "ray")
    assert r.code == 1 and r.err.strip() == ("distillc: error: the ray executor needs Ray: "
                                             "pip install 'distillc[ray]'")
    assert not (tmp_path / "s.duckdb").exists()
