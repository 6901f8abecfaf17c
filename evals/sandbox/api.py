"""The sandbox's public entry points: ``run_many``, ``run_one`` and ``isolation_report``."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
from collections import Counter
from typing import Callable, Sequence

from evals.sandbox import cgroups, launch, toolchains, verdict
from evals.sandbox.cache import BatchedWrites, ExecCache, job_key
from evals.sandbox.pool import SandboxUnavailable, get_pool, not_used
from evals.sandbox.types import ExecResult, Job, Status
from evals.sandbox.worker import WorkerError


def _default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def _skipped(job: Job) -> ExecResult:
    language = toolchains.normalise(job.tests.language)
    failure = {"error_type": "ToolchainMissing", "message": f"no {language} toolchain installed here"}
    return ExecResult(status=Status.SKIPPED, passed=False, n_total=max(job.tests.n_tests, 1),
                      first_failure=failure, feedback=f"ToolchainMissing : {failure['message']}")


def _sandbox_error(job: Job, exc: Exception, isolation: str) -> ExecResult:
    failure = {"error_type": "SandboxError", "message": str(exc)[:2000]}
    return ExecResult(status=Status.KILLED, passed=False, n_total=job.tests.n_tests, first_failure=failure,
                      feedback=f"SandboxError : {failure['message']}", isolation=isolation)


def _execute(jobs: dict[str, Job], workers: int, isolation: str,
             done: Callable[[str, ExecResult], None]) -> dict[str, ExecResult]:
    """Run each distinct job once in the pool; results keyed by job key. ``done(key, result)``
    is called as each result is decided, in this thread."""
    results: dict[str, ExecResult] = {}
    runnable = {}
    for key, job in jobs.items():
        if toolchains.available(job.tests.language):
            runnable[key] = job
        else:
            results[key] = _skipped(job)
            done(key, results[key])
    if not runnable:
        return results
    pool = get_pool(isolation, workers)
    keys = list(runnable)
    messages = [verdict.message(runnable[k]) for k in keys]
    lock = threading.Lock()

    def on_done(index: int, reply) -> None:
        key, job = keys[index], runnable[keys[index]]
        if isinstance(reply, Exception):
            result = _sandbox_error(job, reply, pool.isolation)
        else:
            result = verdict.judge(job, messages[index], reply, pool.isolation)
        with lock:
            results[key] = result
        done(key, result)

    pool.run(messages, on_done)
    return results


def run_many(jobs: Sequence[Job], *, workers: int | None = None, isolation: str = "auto",
             cache: ExecCache | None = None, progress: Callable[[int], None] | None = None) -> list[ExecResult]:
    """Run every job (in parallel, on a warm pool) and return their results in order.

    Identical jobs run once; with a ``cache``, known results are returned with ``cached=True``
    and new ones are stored as they arrive (in batches: see :class:`BatchedWrites`), so a run
    that is interrupted or killed keeps what finished. ``progress(n)`` is called with the number
    of input jobs just finished (cache hits and duplicates included), so a progress bar's
    ``update`` fits. ``isolation`` is ``auto`` (the strongest level this machine starts) or one of
    ``bwrap``, ``landlock``, ``rlimits``; an explicit level that cannot start raises
    :class:`SandboxUnavailable`.
    """
    keys = [job_key(job) for job in jobs]
    occurrences = Counter(keys)
    unique = dict(zip(keys, jobs))
    known = cache.get_many(list(unique)) if cache is not None else {}
    known = {k: dataclasses.replace(r, cached=True) for k, r in known.items()}
    if progress and known:
        progress(sum(occurrences[k] for k in known))
    missing = {k: j for k, j in unique.items() if k not in known}
    writes = BatchedWrites(cache) if cache is not None else None

    def done(key: str, result: ExecResult) -> None:
        if writes is not None:
            writes.add(key, result)
        if progress:
            progress(occurrences[key])

    with writes if writes is not None else contextlib.nullcontext():
        fresh = _execute(missing, workers or _default_workers(), isolation, done)
    merged = {**known, **fresh}
    return [merged[k] for k in keys]


def run_one(job: Job, **kwargs) -> ExecResult:
    """``run_many([job], **kwargs)[0]``."""
    return run_many([job], **kwargs)[0]


def isolation_report(isolation: str = "auto") -> dict:
    """What this machine gives: the level that starts, bubblewrap's path and version, whether the
    uid drop, Landlock, seccomp and per-worker cgroup caps work here, and ``not_used``: why each
    stronger level or mechanism is not in use, where a reason is known (one line each)."""
    report = {"requested": isolation, "root": launch.is_root(),
              "bwrap": {"path": launch.bwrap_binary(), "version": launch.bwrap_version()},
              "toolchains": {name: toolchains.available(name) for name in toolchains.TOOLCHAINS}}
    try:
        pool = get_pool(isolation, 1)
    except SandboxUnavailable as exc:
        return {**report, "level": None, "isolation": None, "error": str(exc), "not_used": exc.reasons}
    worker = pool.workers[0]
    features = worker.features
    return {**report, "level": pool.level, "isolation": pool.isolation, "uid_drop": bool(features.get("uid")),
            "landlock": {"works": bool(features.get("landlock")), "abi": features.get("landlock") or 0},
            "seccomp": bool(features.get("seccomp")), "bwrap_works": pool.level == "bwrap",
            "cgroups": {"worker_caps": bool(features.get("cgroup")), "memory_cap_mb": worker.memory_cap >> 20,
                        "pids_max": cgroups.PIDS_MAX},
            "not_used": _not_used(isolation, pool.level, features)}


def _not_used(requested: str, level: str, features: dict) -> dict[str, str]:
    """Why each level stronger than ``level``, and each mechanism missing from it, is not used."""
    reasons = not_used(requested)
    why = features.get("why_not") or {}
    for name, feature in (("landlock", "landlock"), ("seccomp", "seccomp")):
        if not features.get(feature):
            reasons.setdefault(name, why.get(feature) or f"not applied at the {level} level")
    if not features.get("uid"):
        reasons["uid_drop"] = why.get("uid") or "not running as root: the programs keep this user's uid"
    if not features.get("cgroup"):
        reasons["cgroups"] = why.get("cgroup") or "unknown"
    return reasons


__all__ = ["run_many", "run_one", "isolation_report", "SandboxUnavailable", "WorkerError"]
