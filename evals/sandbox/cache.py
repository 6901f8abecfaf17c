"""Execution-result caching: the key of a job and the cache interface.

The key is a hash of the program, its tests, its limits and the runtime version (sandbox
semantics version, Python and numpy versions, and the toolchain version for other languages), so
an identical re-execution costs nothing and any change that could alter the outcome misses.
The compiler provides a DuckDB-backed cache (table ``exec_cache``); :class:`InMemoryCache` is the
in-process one. ``run_many`` stores new results as they arrive, a batch at a time
(:class:`BatchedWrites`), so a run killed partway keeps every result stored before its last
half second.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sys
import threading
import time
from importlib import metadata
from typing import Protocol, runtime_checkable

from evals.sandbox import toolchains
from evals.sandbox.types import ExecResult, Job, Status, plain_dict

SEMANTICS_VERSION = "1"


@runtime_checkable
class ExecCache(Protocol):
    """Where ``run_many`` looks results up before running and stores them after."""

    def get_many(self, keys: list[str]) -> dict[str, ExecResult]: ...

    def put_many(self, items: dict[str, ExecResult]) -> None: ...


class InMemoryCache:
    """A thread-safe dict-backed :class:`ExecCache`."""

    def __init__(self) -> None:
        self._items: dict[str, ExecResult] = {}
        self._lock = threading.Lock()

    def get_many(self, keys: list[str]) -> dict[str, ExecResult]:
        with self._lock:
            return {k: self._items[k] for k in keys if k in self._items}

    def put_many(self, items: dict[str, ExecResult]) -> None:
        with self._lock:
            self._items.update(items)

    def __len__(self) -> int:
        return len(self._items)


@functools.lru_cache(maxsize=1)
def _python_runtime() -> str:
    try:
        numpy = metadata.version("numpy")
    except metadata.PackageNotFoundError:
        numpy = "none"
    return f"sandbox/{SEMANTICS_VERSION} python/{sys.version.split()[0]} numpy/{numpy}"


def runtime_version(language: str = "python") -> str:
    """What, besides the job itself, can change an outcome."""
    language = toolchains.normalise(language)
    base = _python_runtime()
    return base if language == "python" else f"{base} {language}/{toolchains.version(language)}"


def job_key(job: Job) -> str:
    """sha256 of (code, tests, limits, runtime version), canonical JSON."""
    payload = {"code": job.code, "tests": job.tests.to_dict(), "limits": plain_dict(job.limits),
               "runtime": runtime_version(job.tests.language)}
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def cacheable(result: ExecResult) -> bool:
    """Results about the machine rather than the program are not cached."""
    if result.status is Status.SKIPPED:
        return False
    failure = result.first_failure or {}
    return failure.get("error_type") != "SandboxError"


class BatchedWrites:
    """New results on their way to an :class:`ExecCache`: stored a batch at a time, when
    ``every`` results wait or ``seconds`` have passed since the last store, and at the end.

    Only the thread that created it stores: that is the thread calling ``run_many``, in which
    the pool hands results back, and a DuckDB connection must not be used from several threads
    at once. Results added from any other thread wait for the next store from the owner.
    Use it as a context manager: leaving stores what waits, and when leaving on an exception, a
    failing store does not hide that exception.
    """

    SHARE = 0.1      # stores take about this share of the owner's time at most: slower stores, bigger batches

    def __init__(self, cache: ExecCache, every: int = 256, seconds: float = 0.5) -> None:
        self.cache, self.every, self.seconds = cache, every, seconds
        self._waiting: dict[str, ExecResult] = {}
        self._lock = threading.Lock()
        self._owner = threading.get_ident()
        self._last = time.monotonic()
        self._scale = 1.0

    def add(self, key: str, result: ExecResult) -> None:
        """Queue ``result`` (when :func:`cacheable`) and store the batch if it is due."""
        if not cacheable(result):
            return
        with self._lock:
            self._waiting[key] = result
            due = (len(self._waiting) >= self.every * self._scale
                   or time.monotonic() - self._last >= self.seconds * self._scale)
        if due and threading.get_ident() == self._owner:
            self.flush()

    def flush(self) -> None:
        """Store every waiting result now."""
        with self._lock:
            batch, self._waiting = self._waiting, {}
            self._last = time.monotonic()
        if batch:
            started = time.monotonic()
            self.cache.put_many(batch)
            self._scale = max(1.0, (time.monotonic() - started) / (self.SHARE * self.seconds))

    def __enter__(self) -> "BatchedWrites":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.flush()
            return
        try:
            self.flush()
        except Exception:                           # noqa: BLE001 - the run's own error goes on
            pass
