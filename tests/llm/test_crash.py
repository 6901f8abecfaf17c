"""Crash safety at the client level: SIGKILL a process mid-generate (twice), rerun it, and compare
with an uninterrupted run and with the server's own tally.

After each kill, the answered requests that had to be sent again are at most the requests in flight
at the kills so far (sent with no answer journaled: the ``interrupted`` rows each kill left behind,
at most the concurrency; counted up to each kill because a request in flight at one kill may go out
again only after the next); the final answers are those of an uninterrupted run; and the ledger's
tokens of answered calls equal the server's tally exactly when every answer the server sent was
received, and otherwise fall short of it by no more than the interrupted calls' bound."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from compiler.llm import ledger
from compiler.store.db import Store
from tests.loopback import Faults, LoopbackServer, repaid

ROOT = Path(__file__).resolve().parents[2]
N = 240
CONCURRENCY = 8   # crash_child's max_concurrency


def _child(store: Path, url: str, out: Path, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "tests.llm.crash_child", str(store), url, str(N), str(out),
                             *extra], cwd=ROOT, env=env, stderr=subprocess.PIPE)


def _finish(proc: subprocess.Popen) -> None:
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()[-2000:]


def _kill_when(proc: subprocess.Popen, server: LoopbackServer, answered: int) -> None:
    deadline = time.monotonic() + 60
    while server.tally.answered < answered and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    time.sleep(0.2)   # let the server finish (or drop) what the dead client had in flight


@pytest.fixture(scope="module")
def make_loopback_module():
    servers = []

    def make(**kw):
        servers.append(LoopbackServer(**kw).start())
        return servers[-1]

    yield make
    for s in servers:
        s.stop()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, make_loopback_module):
    tmp = tmp_path_factory.mktemp("clean")
    server = make_loopback_module(latency=0.03)
    _finish(_child(tmp / "s.duckdb", server.url, tmp / "out.json"))
    return json.loads((tmp / "out.json").read_text()), Counter(server.tally.bodies)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kill_minus_nine_twice_then_rerun_matches_an_uninterrupted_run(seed, tmp_path, make_loopback,
                                                                      uninterrupted):
    texts, clean_bodies = uninterrupted
    assert sum(clean_bodies.values()) == N
    server = make_loopback(latency=0.03, faults=Faults(rate_500=0.05), seed=seed)
    store, out = tmp_path / "s.duckdb", tmp_path / "out.json"
    rng = random.Random(seed)
    repaid_at, in_flight = [], []             # at each kill: answers paid twice so far, calls in flight
    interrupted_so_far = 0
    for _ in range(2):
        _kill_when(_child(store, server.url, out), server, server.tally.answered + rng.randint(20, 70))
        with Store.open_readonly(store) as st:     # folds the dead process's journal first
            now = ledger.interrupted(st.con)
            done = st.con.execute("SELECT count(*) FROM llm_cache").fetchone()[0]
            unbounded = ledger.interrupted_calls(st.con)["unbounded"]
        assert done < N, "the kill came too late to test anything"
        assert unbounded == 0                      # every interrupted call states its bound
        repaid_at.append(repaid(server.tally.bodies, clean_bodies))
        in_flight.append(now - interrupted_so_far)
        interrupted_so_far = now
    _finish(_child(store, server.url, out))
    assert json.loads(out.read_text()) == texts

    repaid_at.append(repaid(server.tally.bodies, clean_bodies))
    assert repaid_at[0] == 0
    for k in range(len(in_flight)):
        assert in_flight[k] <= CONCURRENCY
        assert repaid_at[k + 1] <= sum(in_flight[:k + 1]), f"after kill {k + 1}: answers received were paid again"

    with Store.open_readonly(store) as st:
        answered, tokens, keys = st.con.execute(
            "SELECT count(*), sum(prompt_tokens + completion_tokens), count(DISTINCT key) FROM llm_calls "
            "WHERE status IN ('ok', 'retried')").fetchone()
        bound = ledger.interrupted_calls(st.con)
    t = server.tally
    server_tokens = t.prompt_tokens + t.completion_tokens
    assert keys == N and answered <= t.answered <= answered + bound["calls"]
    if answered == t.answered:                 # every answer the server sent was received: billed to the token
        assert tokens == server_tokens
    else:                                      # some died with the client: within the interrupted bound
        assert 0 < server_tokens - tokens <= bound["max_prompt_tokens"] + bound["max_completion_tokens"]
