"""Budgets stop a compile with exit code 3 and a rerun resumes without repaying; kill -9 at random
points of a compile, then compile again: the corpus is the uninterrupted one and the extra requests
are bounded by what was in flight at each kill."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from tests.compiler.conftest import ROOT, STARTER, reference_answerer, starter_tasks
from tests.loopback import LoopbackServer

RECIPE = """\
name: chaos
sources:
  - kind: jsonl
    path: {tasks}
    limit: {limit}
teacher:
  backend: openai
  model: priced-teacher
  base_url: {url}
  max_concurrency: {conc}
  prices: {{input: 1000.0, output: 1000.0}}
stages:
  - uses: teacher_answer
    with: {{n: 2, temperature: 0.5}}
  - uses: extract_code
  - uses: execute
  - uses: filter
  - uses: dedup
  - uses: format
{budget}"""


def write_recipe(tmp_path, server, *, limit=10, conc=2, budget=""):
    path = tmp_path / "chaos.yaml"
    path.write_text(RECIPE.format(tasks=STARTER, limit=limit, url=server.url, conc=conc, budget=budget))
    return path


def compile_proc(recipe, store, *extra):
    env = {**os.environ, "OPENAI_API_KEY": "k", "DISTILLC_PROGRESS": "0"}
    return subprocess.Popen([sys.executable, "-m", "compiler.cli", "compile", str(recipe), "--store", str(store),
                             "--json", *extra], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def finish(proc, timeout=300):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def corpus_rows(store):
    import duckdb

    con = duckdb.connect(str(store), read_only=True)
    try:
        fp = con.execute("SELECT fingerprint FROM versions ORDER BY version DESC LIMIT 1").fetchall()[0][0]
        rows = con.execute(f"SELECT row_id, prompt, completion FROM so_{fp} ORDER BY row_id").fetchall()
        paid = con.execute("SELECT count(*), count(DISTINCT key) FROM llm_calls "
                           "WHERE status IN ('ok', 'retried')").fetchall()[0]
        return rows, paid
    finally:
        con.close()


def committed(store) -> int:
    """Answers committed to the ledger so far."""
    import duckdb

    if not store.exists():
        return 0
    con = duckdb.connect(str(store), read_only=True)
    try:
        return con.execute("SELECT count(*) FROM llm_calls WHERE status IN ('ok', 'retried')").fetchall()[0][0]
    finally:
        con.close()


@pytest.fixture
def server():
    with LoopbackServer(answer=reference_answerer(starter_tasks()), latency=0.05) as s:
        yield s


def test_budget_stops_with_exit_3_and_resume_never_repays(tmp_path, server):
    recipe = write_recipe(tmp_path, server)
    store = tmp_path / "s.duckdb"
    code, out, err = finish(compile_proc(recipe, store, "--budget", "0.4"))
    assert code == 3, err
    assert out == "" and len(err.strip().splitlines()) == 1 and "budget" in err
    stopped_at = server.tally.answered
    assert 0 < stopped_at < 20
    code, out, err = finish(compile_proc(recipe, store, "--budget", "1000"))
    assert code == 0, err
    assert server.tally.answered == 20                        # every request paid for exactly once
    rows, (paid, distinct) = corpus_rows(store)
    assert paid == distinct == 20 and json.loads(out)["llm_calls"] == 20 - stopped_at


def test_recipe_stage_budget(tmp_path, server):
    recipe = write_recipe(tmp_path, server, budget="budget:\n  stages:\n    teacher_answer: 0.3\n")
    code, _, err = finish(compile_proc(recipe, tmp_path / "s.duckdb"))
    assert code == 3 and "teacher_answer" in err


@pytest.mark.slow
def test_kill_9_at_random_points_then_rerun(tmp_path):
    tasks = starter_tasks()
    with LoopbackServer(answer=reference_answerer(tasks), latency=0.05) as clean:
        (tmp_path / "a").mkdir()
        recipe = write_recipe(tmp_path / "a", clean, limit=30, conc=4)
        code, _, err = finish(compile_proc(recipe, tmp_path / "a" / "s.duckdb"))
        assert code == 0, err
        expected_rows, _ = corpus_rows(tmp_path / "a" / "s.duckdb")
        baseline = clean.tally.answered
    assert baseline == 60 and expected_rows

    rng = random.Random(7)
    with LoopbackServer(answer=reference_answerer(tasks), latency=0.2) as server:
        (tmp_path / "b").mkdir()
        recipe = write_recipe(tmp_path / "b", server, limit=30, conc=4)
        store = tmp_path / "b" / "s.duckdb"
        kills, in_flight = 0, 0
        for _ in range(4):
            sent, done = server.tally.requests, committed(store)
            proc = compile_proc(recipe, store)
            time.sleep(rng.uniform(1.5, 3.5))
            if proc.poll() is not None:
                break
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            kills += 1
            # sent to the server by this run but not committed with their answers: in flight at the kill
            in_flight += (server.tally.requests - sent) - (committed(store) - done)
        assert kills >= 2
        code, out, err = finish(compile_proc(recipe, store))
        assert code == 0, err
        rows, (paid, distinct) = corpus_rows(store)
        assert rows == expected_rows
        assert paid == distinct                                   # no request was paid twice in the ledger
        assert in_flight <= 10 * kills          # concurrency 4, plus answers still in the 0.1 s commit window
        assert baseline <= server.tally.answered <= baseline + in_flight   # only in-flight calls were paid twice
