"""Sending: a pool of workers for concurrent backends, chunked calls for in-process ones.

Concurrent backends get one worker task per allowed slot (not one task per request: tens of
thousands of idle tasks cost CPU for nothing). A worker takes the next job, asks the budget, waits
for the rate limiter and the adaptive limit, journals the attempt as sent, sends, and on a retryable
error releases its slot, backs off and tries again until ``max_attempts``. An answer is journaled
before its slot is released (see :mod:`compiler.llm.recorder`), so a ``kill -9`` loses no answer
that came back. The group commits of the buffered rows run in order on one thread of their own:
DuckDB releases the GIL while it works, so commits (and their fsyncs) never stall the event loop.

In-process backends get chunks. A chunk whose ``complete_batch`` raises (out of memory, say) is
split in halves that are tried again, down to single requests; a single request that still raises
fails for now (``generation_error``, transient: the stage is not saved and the next compile retries
it). Errors of the model itself rather than of the batch (it cannot be loaded, a dependency is
missing, the configuration is wrong: :class:`~compiler.errors.DistillcError`) propagate at once.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

from compiler.errors import DistillcError
from compiler.llm.backend import ConcurrentBackend, FatalError, InProcessBackend, RetryableError
from compiler.llm.concurrency import AdaptiveLimit, RateLimiter, RetryPolicy
from compiler.llm.recorder import Job, Recorder

FLUSH_EVERY_S = 0.5   # longest a finished call waits for its commit (it is journaled meanwhile)
FLUSH_ROWS = 512      # commit sooner once this many rows are waiting
FLUSH_CHECK_S = 0.05
LAG_PROBE_S = 0.05    # how often the event loop's own lateness is measured


@dataclass
class Outcome:
    """What a dispatch did: requests sent, and the jobs never sent because the budget said no or
    (``halted`` says why) because the endpoint is unreachable or refuses the configuration."""

    sent: int = 0
    not_sent: list[Job] = field(default_factory=list)
    halted: str | None = None


# Failures that mean "this endpoint or this configuration is wrong", not "this request is wrong":
# before any response arrived, one of them stops the dispatch instead of trying every other job (as
# does a request that used all its attempts on connection errors or timeouts).
HALTING_FATAL = {"http_401", "http_403", "http_404"}
NO_RESPONSE = {"connection": "unreachable", "timeout": "unresponsive"}   # retryable reasons without any reply


class ConcurrentDispatch:
    """One ``generate`` call's worth of jobs on a concurrent backend; :meth:`run` returns when every
    job is finished, failed for good, or refused by the budget."""

    def __init__(self, backend: ConcurrentBackend, recorder: Recorder, *, limit: AdaptiveLimit, rate: RateLimiter,
                 retry: RetryPolicy, max_attempts: int, admits: Callable[[], bool],
                 charge: Callable[[float], None], on_flush: Callable[[int], None] | None = None,
                 seed: int | None = None):
        self.backend, self.recorder, self.limit, self.rate = backend, recorder, limit, rate
        self.retry, self.max_attempts, self.admits, self.charge = retry, max_attempts, admits, charge
        self.on_flush = on_flush
        self.rng = random.Random(seed)
        self.outcome = Outcome()
        self._todo: deque[Job] = deque()
        self._stopped = False
        self._answered = False   # some response (an answer or an HTTP status) came back

    async def run(self, jobs: list[Job]) -> Outcome:
        self._todo.extend(jobs)
        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llm-ledger")
        flusher = asyncio.create_task(self._flush_loop())
        lag_probe = asyncio.create_task(self._lag_loop())
        workers = [asyncio.create_task(self._worker()) for _ in range(min(self.limit.max_limit, len(jobs)))]
        try:
            await asyncio.gather(*workers)
        finally:
            for w in workers:
                w.cancel()
            flusher.cancel()
            lag_probe.cancel()
            await self._settle()
        return self.outcome

    async def _settle(self) -> None:
        """Hand back the jobs never sent and commit everything journaled."""
        self.outcome.not_sent.extend(self._todo)
        self._todo.clear()
        await self._flush()
        self._db.shutdown(wait=True)

    async def _next(self) -> Job | None:
        if self._stopped or not self._todo:
            return None
        if not self.admits():
            self._stopped = True
            return None
        return self._todo.popleft()

    async def _worker(self) -> None:
        while (job := await self._next()) is not None:
            await self._send(job)

    async def _admitted(self, job: Job) -> bool:
        """Wait for a slot; a first attempt asks the budget again, since spending moved meanwhile."""
        if self.rate.active:
            await self.rate.acquire(job.tokens_estimate)
        await self.limit.acquire()
        if job.attempts > 0:
            return True
        if self._stopped or not self.admits():   # halted meanwhile, or the budget says no
            self.limit.release()
            self._todo.appendleft(job)
            self._stopped = True
            return False
        self.outcome.sent += 1
        return True

    async def _send(self, job: Job) -> None:
        while True:
            if not await self._admitted(job):
                return
            job.attempts += 1
            self.recorder.sent(job)
            t0 = time.monotonic()
            try:
                completion = await self.backend.acomplete(job.request)
            except RetryableError as exc:
                self.limit.release()
                if exc.reason not in NO_RESPONSE:
                    self._answered = True
                if not await self._after_retryable(job, exc, time.monotonic() - t0):
                    return
                continue
            except FatalError as exc:
                self.recorder.fail(job, exc.reason, exc.detail, time.monotonic() - t0)
                self.limit.release()
                if exc.reason in HALTING_FATAL and not self._answered:
                    self._halt(str(exc))
                self._answered = True
                return
            except Exception as exc:  # a bug or an unexpected library error: record, never lose the row
                self.recorder.fail(job, "error", f"{type(exc).__name__}: {exc}", time.monotonic() - t0)
                self.limit.release()
                return
            latency = time.monotonic() - t0
            self._answered = True
            self.charge(self.recorder.complete(job, completion, latency))   # journaled before the slot is reused
            self.limit.release()
            self.limit.on_success(latency)
            return

    async def _after_retryable(self, job: Job, exc: RetryableError, latency: float) -> bool:
        """Signal the limiter and sleep before the next attempt; False when attempts are used up."""
        if exc.overload:
            self.limit.on_overload(exc.retry_after)
        else:
            self.limit.on_error()
        if job.attempts >= self.max_attempts or self.outcome.halted:
            self.recorder.fail(job, exc.reason, exc.detail, latency)
            if exc.reason in NO_RESPONSE and not self._answered:
                self._halt(f"{NO_RESPONSE[exc.reason]} ({exc})")
            return False
        self.recorder.retrying(job, exc.reason, exc.detail)
        await asyncio.sleep(self.retry.delay(job.attempts, exc.retry_after, self.rng))
        return True

    def _halt(self, why: str) -> None:
        """Send nothing more: the jobs not yet sent are returned unsent, those in flight finish."""
        if self.outcome.halted is None:
            self.outcome.halted = why
        self._stopped = True

    async def _lag_loop(self) -> None:
        while True:
            t0 = time.monotonic()
            await asyncio.sleep(LAG_PROBE_S)
            self.limit.note_loop_lag(time.monotonic() - t0 - LAG_PROBE_S)

    async def _flush_loop(self) -> None:
        """Commit when enough rows have gathered or the oldest has waited ``FLUSH_EVERY_S``: each
        commit costs the same few milliseconds whatever its size, and what waits is journaled, so
        the interval costs nothing in crash safety."""
        last = time.monotonic()
        while True:
            await asyncio.sleep(FLUSH_CHECK_S)
            now = time.monotonic()
            if self.recorder.buffered >= FLUSH_ROWS or now - last >= FLUSH_EVERY_S:
                last = now
                await self._flush()

    async def _flush(self) -> None:
        rows = self.recorder.take()
        if not rows.empty or rows.segment is not None:
            await asyncio.get_running_loop().run_in_executor(self._db, self.recorder.write, rows)
            if self.on_flush and len(rows):
                self.on_flush(len(rows))


def run_in_process(backend: InProcessBackend, recorder: Recorder, jobs: list[Job], *, chunk: int,
                   admits: Callable[[], bool], charge: Callable[[float], None],
                   on_flush: Callable[[int], None] | None = None) -> Outcome:
    """Send jobs to an in-process backend ``chunk`` at a time, committing after each chunk."""
    outcome = Outcome()
    try:
        for start in range(0, len(jobs), chunk):
            if not admits():
                outcome.not_sent.extend(jobs[start:])
                break
            part = jobs[start:start + chunk]
            outcome.sent += len(part)
            _complete_chunk(backend, recorder, part, charge)
            n = recorder.buffered
            recorder.flush()
            if on_flush:
                on_flush(n)
    finally:
        recorder.flush()
    return outcome


def _complete_chunk(backend: InProcessBackend, recorder: Recorder, part: list[Job],
                    charge: Callable[[float], None]) -> None:
    """Complete ``part``, halving whatever batch raises; a single request that still raises fails for now."""
    todo = [part]
    while todo:
        jobs = todo.pop()
        t0 = time.monotonic()
        error = _try_batch(backend, recorder, jobs, charge)
        if error is None:
            continue
        if len(jobs) > 1:
            half = (len(jobs) + 1) // 2
            todo += [jobs[half:], jobs[:half]]     # the first half is tried first
        else:
            recorder.fail(jobs[0], "generation_error", error, time.monotonic() - t0)


def _try_batch(backend: InProcessBackend, recorder: Recorder, jobs: list[Job],
               charge: Callable[[float], None]) -> str | None:
    """One ``complete_batch`` of ``jobs``: None when every job got its answer, else what went wrong."""
    for job in jobs:
        job.attempts += 1
        recorder.sent(job)
    t0 = time.monotonic()
    try:
        completions = backend.complete_batch([j.request for j in jobs])
    except DistillcError:
        raise
    except Exception as exc:  # a failure of this batch (out of memory...): smaller batches may pass
        lines = str(exc).strip().splitlines()
        return f"{type(exc).__name__}: {lines[0] if lines else 'no details'}"
    latency = (time.monotonic() - t0) / max(1, len(jobs))
    for job, completion in zip(jobs, completions):
        charge(recorder.complete(job, completion, latency))
    return None
