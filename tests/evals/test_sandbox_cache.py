"""Results reach the execution cache as they arrive: batching, the thread that stores, and runs
that die partway (an exception in the caller, or kill -9 of a process on the compiler's store)
keep what finished, so the rerun executes only the rest."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from compiler.store.db import Store
from compiler.store.exec_cache import StoreExecCache
from evals.sandbox import ExecResult, InMemoryCache, Job, Status, TestSpec, job_key, run_many
from evals.sandbox.cache import BatchedWrites


class RecordingCache(InMemoryCache):
    """Remembers each batch it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[str]] = []

    def put_many(self, items: dict[str, ExecResult]) -> None:
        self.batches.append(list(items))
        super().put_many(items)


def slow_jobs(n: int, seconds: float = 0.15, tag: str = "") -> list[Job]:
    return [Job(code=f"import time\ntime.sleep({seconds})\nprint({i!r}, {tag!r})\n", tests=TestSpec(style="run"))
            for i in range(n)]


def passed(n: int) -> ExecResult:
    return ExecResult(status=Status.PASSED, passed=True, n_passed=n, n_total=n)


def test_batches_go_out_by_count_and_by_time_and_only_from_the_owner_thread():
    cache = RecordingCache()
    writes = BatchedWrites(cache, every=3, seconds=60)
    for i in range(7):
        writes.add(f"k{i}", passed(i))
    assert cache.batches == [["k0", "k1", "k2"], ["k3", "k4", "k5"]]
    writes.add("skipped", ExecResult(status=Status.SKIPPED, passed=False))      # never cached
    other = threading.Thread(target=lambda: [writes.add(f"t{i}", passed(i)) for i in range(3)])
    other.start()
    other.join()
    assert len(cache.batches) == 2                      # due, but not this thread's to store
    writes.flush()
    assert cache.batches[-1] == ["k6", "t0", "t1", "t2"]
    timed = BatchedWrites(cache, every=1000, seconds=0.2)
    timed.add("a", passed(1))
    time.sleep(0.25)
    timed.add("b", passed(1))
    assert cache.batches[-1] == ["a", "b"]


def test_a_slow_store_makes_the_batches_grow_so_storing_stays_a_small_share():
    cache = RecordingCache()
    original = cache.put_many

    def slow_put(items: dict[str, ExecResult]) -> None:
        time.sleep(0.1)                        # twice the tenth of the half-second cadence
        original(items)

    cache.put_many = slow_put
    writes = BatchedWrites(cache, every=4, seconds=0.5)
    for i in range(4):
        writes.add(f"k{i}", passed(i))
    assert cache.batches == [["k0", "k1", "k2", "k3"]]
    assert writes._scale >= 2.0
    for i in range(4, 11):
        writes.add(f"k{i}", passed(i))
    assert len(cache.batches) == 1               # 4 more no longer make a batch: it takes 8 or more now
    i = 11
    while len(cache.batches) == 1 and i < 40:
        writes.add(f"k{i}", passed(i))
        i += 1
    assert len(cache.batches) == 2 and len(cache.batches[1]) >= 8


def test_results_are_stored_while_the_run_goes_on():
    cache, ticks, seen = RecordingCache(), [], []
    original = cache.put_many

    def put_many(items: dict[str, ExecResult]) -> None:
        seen.append((sum(ticks), len(items)))
        original(items)

    cache.put_many = put_many
    jobs = slow_jobs(12, tag="during")
    run_many(jobs, cache=cache, progress=ticks.append, workers=2)
    assert len(cache) == 12 and len(seen) >= 2
    assert seen[0][0] < 12                              # the first batch before the last result


def test_an_error_partway_keeps_the_finished_results_and_the_rerun_runs_the_rest():
    cache, jobs = InMemoryCache(), slow_jobs(8, seconds=0.05, tag="error")
    ticks: list[int] = []

    def progress(n: int) -> None:
        ticks.append(n)
        if len(ticks) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_many(jobs, cache=cache, progress=progress, workers=2)
    assert len(cache) == 3
    again = run_many(jobs, cache=cache, workers=2)
    assert sum(r.cached for r in again) == 3 and all(r.passed for r in again) and len(cache) == 8


SCRIPT = textwrap.dedent("""
    import sys
    from compiler.store.db import Store
    from compiler.store.exec_cache import StoreExecCache
    from tests.evals.test_sandbox_cache import slow_jobs
    from evals.sandbox import run_many

    store = Store.open(sys.argv[1])
    run_many(slow_jobs(int(sys.argv[2]), seconds=0.2, tag="kill"), cache=StoreExecCache(store), workers=2,
             progress=lambda n: print("done", flush=True))
    print("finished", flush=True)
""")


@pytest.mark.timeout(120)
def test_kill_9_partway_keeps_the_stored_results_and_the_rerun_runs_only_the_rest(tmp_path):
    path, total = tmp_path / "store.duckdb", 40
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(path), str(total)], stdout=subprocess.PIPE, text=True)
    try:
        finished = 0
        while finished < total // 2:
            line = proc.stdout.readline()
            assert line == "done\n", f"the run ended early: {line!r}"
            finished += 1
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
    jobs = slow_jobs(total, seconds=0.2, tag="kill")
    with Store.open(path) as store:
        cache = StoreExecCache(store)
        stored = cache.get_many([job_key(j) for j in jobs])
        assert 0 < len(stored) <= finished < total
        assert all(r.passed for r in stored.values())
        again = run_many(jobs, cache=cache, workers=2)
        assert sum(r.cached for r in again) == len(stored)
        assert all(r.passed for r in again)
        assert len(cache.get_many([job_key(j) for j in jobs])) == total
