"""Crash safety at the client level: SIGKILL a process mid-generate, rerun it, and compare with an
uninterrupted run. The rerun must produce the same answers, and the server must have answered at most
N plus the calls that were in flight (still ``pending`` in the ledger) at the kill."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from compiler.llm import ledger
from compiler.store.db import Store

ROOT = Path(__file__).resolve().parents[2]
N = 240


def _child(store: Path, url: str, out: Path, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "tests.llm.crash_child", str(store), url, str(N), str(out),
                             *extra], cwd=ROOT, env=env, stderr=subprocess.PIPE)


def _finish(proc: subprocess.Popen) -> None:
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()[-2000:]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, make_loopback_module):
    tmp = tmp_path_factory.mktemp("clean")
    server = make_loopback_module(latency=0.03)
    _finish(_child(tmp / "s.duckdb", server.url, tmp / "out.json"))
    return json.loads((tmp / "out.json").read_text()), server.tally.answered


@pytest.fixture(scope="module")
def make_loopback_module():
    from tests.loopback import LoopbackServer
    servers = []

    def make(**kw):
        servers.append(LoopbackServer(**kw).start())
        return servers[-1]

    yield make
    for s in servers:
        s.stop()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kill_minus_nine_then_rerun_matches_an_uninterrupted_run(seed, tmp_path, make_loopback, uninterrupted):
    texts, clean_answered = uninterrupted
    assert clean_answered == N
    server = make_loopback(latency=0.03)
    kill_at = random.Random(seed).randint(20, N - 100)
    proc = _child(tmp_path / "s.duckdb", server.url, tmp_path / "out.json")
    deadline = time.monotonic() + 60
    while server.tally.answered < kill_at and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    with Store.open(tmp_path / "s.duckdb") as store:
        in_flight = ledger.interrupted(store.con)
        done = store.con.execute("SELECT count(*) FROM llm_cache").fetchone()[0]
    assert done < N, "the kill came too late to test anything"
    _finish(_child(tmp_path / "s.duckdb", server.url, tmp_path / "out.json"))
    assert json.loads((tmp_path / "out.json").read_text()) == texts
    assert N <= server.tally.answered <= N + in_flight
