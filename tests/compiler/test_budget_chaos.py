"""Budgets stop a compile with exit code 3 and a rerun resumes without repaying; kill -9 at seeded
moments of a compile against a server that fails 5% of requests, then compile again: the corpus is the
uninterrupted one, the reruns repay at most the requests the kills had in flight (their ``interrupted``
rows, at most the concurrency each), and the ledger's tokens are the server's."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from compiler.llm import ledger
from compiler.store.db import Store
from tests.compiler.conftest import ROOT, STARTER, reference_answerer, run_cli, starter_tasks
from tests.loopback import Faults, LoopbackServer, repaid

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


def interrupted_now(store) -> int:
    """Interrupted calls in the store so far (opening it folds a dead compile's journal first)."""
    with Store.open_readonly(store) as st:
        return ledger.interrupted(st.con)


def kill_when_answered(proc, server, answered: int) -> bool:
    """SIGKILL ``proc`` once the server has answered ``answered`` requests; False if it finished first."""
    deadline = time.monotonic() + 60
    while server.tally.answered < answered and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    if proc.poll() is not None:
        return False
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(0.2)   # let the server finish (or drop) what the dead compile had in flight
    return True


@pytest.mark.slow
def test_kill_9_at_seeded_moments_then_rerun(tmp_path):
    tasks = starter_tasks()
    with LoopbackServer(answer=reference_answerer(tasks), latency=0.05) as clean:
        (tmp_path / "a").mkdir()
        recipe = write_recipe(tmp_path / "a", clean, limit=30, conc=4)
        code, _, err = finish(compile_proc(recipe, tmp_path / "a" / "s.duckdb"))
        assert code == 0, err
        expected_rows, _ = corpus_rows(tmp_path / "a" / "s.duckdb")
        baseline, clean_bodies = clean.tally.answered, Counter(clean.tally.bodies)
    assert baseline == 60 and expected_rows

    rng = random.Random(7)
    with LoopbackServer(answer=reference_answerer(tasks), latency=0.05, faults=Faults(rate_500=0.05),
                        seed=7) as server:
        (tmp_path / "b").mkdir()
        recipe = write_recipe(tmp_path / "b", server, limit=30, conc=4)
        store = tmp_path / "b" / "s.duckdb"
        repaid_at, in_flight = [], []              # at each kill: answers paid twice so far, calls in flight
        seen = 0
        for _ in range(4):
            if not kill_when_answered(compile_proc(recipe, store), server, server.tally.answered + rng.randint(4, 12)):
                break
            now = interrupted_now(store)
            repaid_at.append(repaid(server.tally.bodies, clean_bodies))
            in_flight.append(now - seen)
            seen = now
        assert len(in_flight) >= 3
        code, out, err = finish(compile_proc(recipe, store))
        assert code == 0, err
        rows, (paid, distinct) = corpus_rows(store)
        assert rows == expected_rows
        assert paid == distinct == baseline                       # every answer billed once in the ledger
        assert server.tally.statuses["500"] > 0

        # Each rerun repays at most what the kills before it had in flight: their answers may have been
        # sent by the server but were never received (counted up to each kill: a request still waiting
        # at one kill may go out only after the next).
        repaid_at.append(repaid(server.tally.bodies, clean_bodies))
        assert repaid_at[0] == 0
        for k in range(len(in_flight)):
            assert in_flight[k] <= 4, f"kill {k + 1}: {in_flight[k]} calls in flight at concurrency 4"
            assert repaid_at[k + 1] <= sum(in_flight[:k + 1]), \
                f"after kill {k + 1}: {repaid_at[k + 1]} answers paid again, {in_flight[:k + 1]} in flight"

        cost = run_cli("cost", "chaos", "--store", store, "--json").json()
        t, bound = server.tally, cost["interrupted"]
        assert bound["calls"] == seen and bound["unbounded"] == 0
        assert all(r["max_usd"] > 0 and r["max_completion_tokens"] == 1024 for r in bound["rows"])
        ledger_tokens = cost["total"]["prompt_tokens"] + cost["total"]["completion_tokens"]
        if t.answered == paid:                 # every answer the server sent was received: billed to the token
            assert ledger_tokens == t.prompt_tokens + t.completion_tokens
        else:                                  # some died with a compile: within the interrupted bound
            lost = t.prompt_tokens + t.completion_tokens - ledger_tokens
            assert 0 < lost <= bound["max_prompt_tokens"] + bound["max_completion_tokens"]
        assert paid <= t.answered <= paid + seen
        human = run_cli("cost", "chaos", "--store", store)
        assert (f"{seen} interrupted calls" in human.out) == (seen > 0)
