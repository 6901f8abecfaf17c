"""A warm pool of fork servers running jobs in parallel, and the per-process registry of pools.

One pool per (isolation level, worker count) is kept for the life of the process and reused by
every ``run_many`` call; it is shut down at interpreter exit, and a forked child process starts
with no pools (it must not share its parent's servers).
"""

from __future__ import annotations

import atexit
import collections
import os
import queue
import threading
from typing import Callable

from evals.sandbox import cgroups, launch
from evals.sandbox.worker import Worker, WorkerError


class SandboxUnavailable(RuntimeError):
    """The requested isolation level cannot start on this machine."""


def describe(level: str, features: dict) -> str:
    """The isolation string recorded on results, e.g. ``bwrap+uid+landlock+seccomp+cgroup+rlimits``."""
    parts = ["bwrap"] if level == "bwrap" else []
    if features.get("uid"):
        parts.append("uid")
    if features.get("landlock"):
        parts.append("landlock")
    if features.get("seccomp"):
        parts.append("seccomp")
    if features.get("cgroup"):
        parts.append("cgroup")
    return "+".join(parts + ["rlimits"])


class Pool:
    """``workers`` fork servers at one isolation level."""

    def __init__(self, level: str, workers: int) -> None:
        self.level = level
        cap = cgroups.worker_memory_cap(workers)
        self.workers = [Worker(level, cap) for _ in range(max(1, workers))]
        self._free: queue.Queue[Worker] = queue.Queue()
        self.isolation = ""

    def start(self) -> None:
        errors: list[Exception] = []

        def boot(worker: Worker) -> None:
            try:
                worker.start()
            except WorkerError as exc:
                errors.append(exc)

        threads = [threading.Thread(target=boot, args=(w,)) for w in self.workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            self.close()
            raise SandboxUnavailable(str(errors[0]))
        self.isolation = describe(self.level, self.workers[0].features)
        for w in self.workers:
            self._free.put(w)

    def run(self, messages: list[dict], on_done: Callable[[int, dict | Exception], None]) -> None:
        """Run every message; ``on_done(index, reply_or_error)`` is called as each finishes.
        Each worker keeps a second job queued behind the running one, so its server never waits
        for the parent between jobs."""
        pending: queue.Queue[int] = queue.Queue()
        for i in range(len(messages)):
            pending.put(i)

        def drain() -> None:
            worker = self._free.get()
            try:
                _stream(worker, messages, pending, on_done)
            finally:
                self._free.put(worker)

        threads = [threading.Thread(target=drain, daemon=True) for _ in range(min(len(self.workers), len(messages)))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def close(self) -> None:
        for w in self.workers:
            w.close()


PIPELINE_DEPTH = 2


def _stream(worker: Worker, messages: list[dict], pending: queue.Queue, on_done) -> None:
    """Feed ``worker`` from ``pending`` with up to PIPELINE_DEPTH jobs in flight."""
    inflight: collections.deque[int] = collections.deque()

    def fill() -> None:
        while len(inflight) < PIPELINE_DEPTH:
            try:
                index = pending.get_nowait()
            except queue.Empty:
                return
            inflight.append(index)
            worker.submit(messages[index])

    while True:
        try:
            fill()
            if not inflight:
                return
            index = inflight[0]
            reply = worker.collect(messages[index])
            inflight.popleft()
            fill()
        except WorkerError:
            for lost in list(inflight):                 # the server is gone: rerun what it held
                inflight.popleft()
                on_done(lost, _run_with_retry(worker, messages[lost]))
            continue
        on_done(index, reply)


def _run_with_retry(worker: Worker, message: dict) -> dict | Exception:
    """One job; a server lost during it (killed from outside, say) is restarted and the job tried
    once more before it is reported as a sandbox failure."""
    try:
        return worker.run(message)
    except WorkerError:
        pass
    try:
        return worker.run(message)
    except WorkerError as exc:
        return exc


_POOLS: dict[tuple[str, int], Pool] = {}
_RESOLVED: dict[str, str] = {}
_LOCK = threading.Lock()


def _candidates(requested: str) -> tuple[str, ...]:
    if requested == "auto":
        return LEVELS_AUTO
    if requested not in launch.LEVELS:
        raise ValueError(f"isolation must be 'auto' or one of {launch.LEVELS}, not {requested!r}")
    return (requested,)


LEVELS_AUTO = ("bwrap", "landlock", "rlimits")


def _usable(level: str) -> bool:
    return level != "bwrap" or launch.bwrap_binary() is not None


def get_pool(requested: str, workers: int) -> Pool:
    """The process's pool for this isolation request, started on first use (``auto`` falls back
    from bwrap to landlock to rlimits when a level does not start here)."""
    with _LOCK:
        level = _RESOLVED.get(requested)
        if level and (level, workers) in _POOLS:
            return _POOLS[(level, workers)]
        last_error: Exception | None = None
        for candidate in _candidates(requested):
            if not _usable(candidate):
                last_error = SandboxUnavailable(f"{candidate}: no bubblewrap binary found")
                continue
            pool = _POOLS.get((candidate, workers)) or Pool(candidate, workers)
            try:
                if not pool.isolation:
                    pool.start()
            except SandboxUnavailable as exc:
                last_error = exc
                continue
            _POOLS[(candidate, workers)] = pool
            _RESOLVED[requested] = candidate
            return pool
        raise SandboxUnavailable(f"no sandbox level could start for {requested!r}: {last_error}")


def shutdown() -> None:
    """Stop every pool of this process (registered to run at exit)."""
    with _LOCK:
        for pool in _POOLS.values():
            pool.close()
        _POOLS.clear()
        _RESOLVED.clear()


def _forget_after_fork() -> None:
    global _LOCK
    _POOLS.clear()
    _RESOLVED.clear()
    _LOCK = threading.Lock()


atexit.register(shutdown)
os.register_at_fork(after_in_child=_forget_after_fork)
