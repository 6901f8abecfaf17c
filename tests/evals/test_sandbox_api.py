"""The sandbox API: ordering, de-duplication, caching, progress, the warm pool's life cycle,
isolation fall-back and the cache key."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys

import pytest

import evals.sandbox as sandbox
from evals.sandbox import (ExecResult, InMemoryCache, Job, Limits, SandboxUnavailable, Status, TestCase, TestSpec,
                           job_key, run_many, run_one)
from evals.sandbox import dispatch, launch, pool, toolchains

TOKEN = "import os\nprint(os.urandom(8).hex())\n"


def job(code: str = "x = 1\n", **spec) -> Job:
    return Job(code=code, tests=TestSpec(style="run", **spec))


class CountingCache(InMemoryCache):
    def __init__(self) -> None:
        super().__init__()
        self.stored: list[str] = []

    def put_many(self, items: dict[str, ExecResult]) -> None:
        self.stored += list(items)
        super().put_many(items)


def test_order_is_kept_and_identical_jobs_run_once():
    a, b = job(TOKEN), job(TOKEN + "# another program\n")
    ticks: list[int] = []
    results = run_many([a, b, a, a], progress=ticks.append)
    assert [r.status for r in results] == [Status.PASSED] * 4
    assert results[0].stdout == results[2].stdout == results[3].stdout != results[1].stdout
    assert sum(ticks) == 4


def test_cache_returns_known_results_without_running_them():
    cache = CountingCache()
    jobs = [job(TOKEN), job(TOKEN + "raise ValueError('no')\n")]
    first = run_many(jobs, cache=cache)
    assert sorted(cache.stored) == sorted(job_key(j) for j in jobs)
    ticks: list[int] = []
    second = run_many(jobs + jobs, cache=cache, progress=ticks.append)
    assert all(r.cached for r in second) and sum(ticks) == 4
    assert [dataclasses.replace(r, cached=False) for r in second[:2]] == first
    assert len(cache.stored) == 2


def test_results_about_the_machine_are_not_cached():
    missing = [name for name in toolchains.TOOLCHAINS if not toolchains.available(name)]
    if not missing:
        pytest.skip("every toolchain is installed here")
    cache = CountingCache()
    result = run_one(Job(code="", tests=TestSpec(style="run", language=missing[0])), cache=cache)
    assert result.status is Status.SKIPPED and not result.passed and result.feedback.startswith("ToolchainMissing")
    assert cache.stored == []


def test_job_key_covers_code_tests_limits_and_is_stable_across_processes():
    base = Job(code="def f():\n    return 1\n", tests=TestSpec(style="mbpp", cases=(TestCase(kind="assert", code="assert f() == 1"),)))
    variants = [
        dataclasses.replace(base, code=base.code + "\n"),
        dataclasses.replace(base, tests=dataclasses.replace(base.tests, setup="import math")),
        dataclasses.replace(base, limits=Limits(cpu_seconds=6)),
    ]
    keys = {job_key(base), *(job_key(v) for v in variants)}
    assert len(keys) == 4 and job_key(base) == job_key(dataclasses.replace(base))
    script = ("from evals.sandbox import *\n"
              "print(job_key(Job(code='def f():\\n    return 1\\n', tests=TestSpec(style='mbpp', "
              "cases=(TestCase(kind='assert', code='assert f() == 1'),)))))")
    other = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert other.stdout.strip() == job_key(base)
    assert sandbox.runtime_version().startswith("sandbox/")


def test_the_pool_stays_warm_and_recovers_from_a_dead_server():
    run_one(job())
    servers = {w.proc.pid for p in pool._POOLS.values() for w in p.workers if w.alive()}
    run_many([job(f"x = {i}\n") for i in range(6)])
    assert servers <= {w.proc.pid for p in pool._POOLS.values() for w in p.workers if w.alive()}
    victim = next(w for p in pool._POOLS.values() for w in p.workers if w.alive())
    os.kill(victim.proc.pid, signal.SIGKILL)
    victim.proc.wait()
    results = run_many([job(f"y = {i}\n") for i in range(6)])
    assert all(r.passed for r in results)


def _fork_server(worker) -> int:
    """The pid of a worker's fork server (under bubblewrap, a descendant of the worker's process)."""
    python, stack = os.path.realpath(sys.executable), [worker.proc.pid]
    while stack:
        pid = stack.pop()
        if os.path.realpath(f"/proc/{pid}/exe") == python:
            return pid
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                stack += [int(p) for p in fh.read().split()]
    raise LookupError("no fork server found")


@pytest.mark.timeout(60)
def test_a_server_that_stops_answering_is_replaced_and_its_jobs_rerun(fresh_pools, monkeypatch):
    monkeypatch.setattr(dispatch, "REPLY_MARGIN", 0.5)
    run_one(job(), workers=1)
    stuck = _fork_server(next(iter(pool._POOLS.values())).workers[0])
    os.kill(stuck, signal.SIGSTOP)
    try:
        quick = Limits(cpu_seconds=1, wall_seconds=1)
        results = run_many([Job(code=f"x = {i}\n", tests=TestSpec(style="run"), limits=quick) for i in range(3)],
                           workers=1)
    finally:
        try:
            os.kill(stuck, signal.SIGCONT)
        except ProcessLookupError:
            pass
    assert [r.status for r in results] == [Status.PASSED] * 3
    assert _fork_server(next(iter(pool._POOLS.values())).workers[0]) != stuck


@pytest.fixture
def fresh_pools():
    pool.shutdown()
    yield
    pool.shutdown()


@pytest.mark.parametrize("binary, why", [
    (None, "no bubblewrap binary"),
    ("/nonexistent/bwrap", "No such file or directory: '/nonexistent/bwrap'"),
    ("/bin/false", "/bin/false exited with status 1 before the server was ready"),
])
def test_auto_falls_back_when_bubblewrap_is_missing_or_broken_and_keeps_why(fresh_pools, monkeypatch, binary, why):
    monkeypatch.setattr(launch, "bwrap_binary", lambda: binary)
    result = run_one(job(), isolation="auto")
    assert result.status is Status.PASSED
    assert not result.isolation.startswith("bwrap") and result.isolation.endswith("rlimits")
    reasons = pool.not_used("auto")
    assert list(reasons) == ["bwrap"] and why in reasons["bwrap"] and "\n" not in reasons["bwrap"]
    with pytest.raises(SandboxUnavailable) as raised:
        run_one(job(), isolation="bwrap")
    assert why in raised.value.reasons["bwrap"] and why in str(raised.value)


def test_the_last_words_of_a_failing_bwrap_are_the_reason(fresh_pools, monkeypatch, tmp_path):
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'some warning' >&2\necho 'bwrap: No permissions to create a new namespace' >&2\n"
                    "exit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr(launch, "bwrap_binary", lambda: str(fake))
    assert run_one(job(), isolation="auto").isolation.split("+")[0] != "bwrap"
    assert pool.not_used("auto") == {"bwrap": "bwrap: No permissions to create a new namespace"}


def test_unknown_isolation_and_mismatched_language_are_errors():
    with pytest.raises(ValueError):
        run_one(job(), isolation="docker")
    with pytest.raises(ValueError, match="Python only"):
        run_one(Job(code="int main(){}", tests=TestSpec(style="mbpp", language="c")))


def test_isolation_report_describes_this_machine():
    report = sandbox.isolation_report()
    assert {"level", "isolation", "bwrap", "uid_drop", "landlock", "seccomp", "cgroups", "root", "toolchains"} <= report.keys()
    assert report["level"] in launch.LEVELS
    assert report["toolchains"]["python"] is True
    if report["level"] == "bwrap":
        assert report["bwrap"]["path"] and report["bwrap"]["version"]
    assert report["uid_drop"] == (os.geteuid() == 0)
    why = report["not_used"]
    assert ("bwrap" in why) == (report["level"] != "bwrap")
    assert ("landlock" in why) == (not report["landlock"]["works"])
    assert ("seccomp" in why) == (not report["seccomp"])
    assert ("uid_drop" in why) == (not report["uid_drop"])
    assert ("cgroups" in why) == (not report["cgroups"]["worker_caps"])
    assert all(reason and "\n" not in reason for reason in why.values())


def test_a_failed_probe_says_what_went_wrong():
    """The fork server's probes (Landlock, seccomp, uid drop) report what the attempt raised."""
    from evals.sandbox.inside.server import Server

    def refuse() -> None:
        raise PermissionError(1, "Operation not permitted")

    assert Server._probe(None, lambda: None) == ""
    assert Server._probe(None, refuse) == "PermissionError: [Errno 1] Operation not permitted"
    assert Server._probe(None, lambda: os._exit(3)) == "the probe ended with status 3"


def test_string_hashing_is_the_same_in_every_worker():
    """Set iteration order must not depend on which worker ran a program (MBPP+ verdicts on sets)."""
    jobs = [Job(code=f"print(hash('abc'), list({{'x', 'y', 'z', 'w'}}), {i})", tests=TestSpec(style="run"))
            for i in range(8)]
    outs = {r.stdout.rsplit(" ", 1)[0] for r in run_many(jobs)}
    assert len(outs) == 1
