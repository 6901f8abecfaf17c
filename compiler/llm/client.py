"""LLMClient: what stages call to turn requests into results, through the cache, the ledger and a
backend.

``generate`` resolves the cache in one query (hits become $0 ``cache_hit`` ledger rows), sends the
misses (identical requests once), and returns one result per request in request order. It never
raises for a single request: a request that fails for good is ``LLMResult(ok=False)`` plus a row
in ``llm_failures``. It raises :class:`~compiler.errors.BudgetExceeded` only after everything that
was sent has been recorded.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from typing import TYPE_CHECKING, Any, Callable, Sequence

from compiler.llm import cache
from compiler.llm.backend import Backend, make_backend
from compiler.llm.budget import Budget
from compiler.llm.concurrency import AdaptiveLimit, RateLimiter, RetryPolicy
from compiler.llm.dispatch import ConcurrentDispatch, Outcome, run_in_process
from compiler.llm.prices import resolve_price
from compiler.llm.recorder import CallContext, Job, Recorder
from compiler.llm.types import LLMRequest, LLMResult, key_of

if TYPE_CHECKING:
    from compiler.recipe.schema import ModelConfig
    from compiler.store.db import Store

PROGRESS_MIN = 50   # show a progress bar for batches at least this large


class LLMClient:
    """One model in one role (teacher / student / judge) of a compile.

    Counters: ``calls_sent`` (requests sent to the backend, cache hits excluded), ``cache_hits``,
    ``usd`` (dollars this client spent)."""

    def __init__(self, config: "ModelConfig", *, store: "Store | None", role: str,
                 budget: Budget | None = None, backend: Backend | None = None,
                 retry: RetryPolicy | None = None, batch_poll_s: float = 30.0):
        self.config, self.store, self.role = config, store, role
        self.batch_poll_s = batch_poll_s
        self.budget = budget
        self.backend = backend or make_backend(config)
        self.retry = retry or RetryPolicy()
        self.price, self.price_version = resolve_price(config)
        self.limit = AdaptiveLimit(config.max_concurrency)
        self.remote: Any = None       # a Ray session sending for this client (executor: ray)
        self.calls_sent = 0
        self.cache_hits = 0
        self.usd = 0.0

    # -- public --------------------------------------------------------------------------------
    def generate(self, requests: Sequence[LLMRequest], *, stage: str, stage_fp: str,
                 progress: bool = True) -> list[LLMResult]:
        requests = list(requests)
        recorder = Recorder(self.store, self._context(stage, stage_fp), requests)
        if self.budget is not None:
            self.budget.load_past(self.store, stage, stage_fp)
        jobs = self._resolve_cache(requests, recorder)
        outcome = self._send(jobs, recorder, stage, progress)
        self.calls_sent += outcome.sent
        self.usd += recorder.usd
        if outcome.halted:
            raise self._halted(outcome, stage)
        if outcome.not_sent:
            raise self.budget.exceeded(stage, sum(len(j.indices) for j in outcome.not_sent))
        return [r for r in recorder.results if r is not None]

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> "LLMClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _halted(self, outcome: Outcome, stage: str) -> Exception:
        from compiler.errors import BackendError
        where = self.config.base_url or "the OpenAI API"
        unsent = sum(len(j.indices) for j in outcome.not_sent)
        held = f", {unsent} requests were never sent" if unsent else ""
        slow = f" (or raise {self.role}.timeout_s)" if outcome.halted.startswith("unresponsive") else ""
        return BackendError(
            f"{self.role} {self.backend.model!r} at {where}: {outcome.halted}; no request of stage {stage!r} "
            f"got an answer{held} and the stage was not saved: check {self.role}.base_url, {self.role}.model "
            f"and ${self.config.api_key_env}{slow}, then compile again")

    # -- steps ---------------------------------------------------------------------------------
    def _context(self, stage: str, stage_fp: str) -> CallContext:
        b = self.backend
        return CallContext(backend=b.kind, model=b.model, revision=b.revision, role=self.role, stage=stage,
                           stage_fp=stage_fp, price=self.price, price_version=self.price_version,
                           batch=bool(self.config.batch and b.kind == "openai"))

    def _resolve_cache(self, requests: list[LLMRequest], recorder: Recorder) -> list[Job]:
        """Record hits; return one job per distinct missing key, in first-seen order."""
        b = self.backend
        key_jsons = [r.key_json(b.kind, b.model, b.revision) for r in requests]
        keys = [key_of(k) for k in key_jsons]
        found = cache.lookup(self.store.con, keys) if self.store is not None else {}
        jobs: dict[str, Job] = {}
        for i, (req, key) in enumerate(zip(requests, keys)):
            if key in found:
                recorder.hit(i, key, found[key])
                self.cache_hits += 1
            elif key in jobs:
                jobs[key].indices.append(i)
                self.cache_hits += 1
            else:
                jobs[key] = Job(req, key, [i], key_json=key_jsons[i], tokens_estimate=_estimate_tokens(req))
        recorder.flush()
        return list(jobs.values())

    def _send(self, jobs: list[Job], recorder: Recorder, stage: str, progress: bool) -> Outcome:
        if not jobs:
            return Outcome()
        bar = _progress_bar(len(jobs), f"{stage} [{self.role}]", progress)
        admits = (lambda: self.budget.admits(stage)) if self.budget else (lambda: True)
        charge = (lambda usd: self.budget.charge(stage, usd)) if self.budget else (lambda usd: None)
        on_flush = bar.update if bar is not None else None
        try:
            if self.config.batch and self.backend.kind == "openai":
                from compiler.llm.batch import run_batch
                return _run_async(lambda: run_batch(self.backend, recorder, jobs, admits=admits, charge=charge,
                                                    max_attempts=self.config.max_retries + 1,
                                                    poll_s=self.batch_poll_s))
            if self.remote is not None:
                return self.remote.send(self.config, jobs, recorder, admits, charge, on_flush)
            if getattr(self.backend, "concurrent", False):
                return _run_async(lambda: self._run_concurrent(jobs, recorder, admits, charge, on_flush))
            chunk = max(1, getattr(self.config, "batch_size", 8)) * 4
            return run_in_process(self.backend, recorder, jobs, chunk=chunk, admits=admits, charge=charge,
                                  on_flush=on_flush)
        finally:
            if bar is not None:
                bar.close()

    async def _run_concurrent(self, jobs: list[Job], recorder: Recorder, admits: Callable[[], bool],
                              charge: Callable[[float], None], on_flush: Callable[[int], None] | None) -> Outcome:
        dispatch = ConcurrentDispatch(self.backend, recorder, limit=self.limit,
                                      rate=RateLimiter(self.config.rpm, self.config.tpm), retry=self.retry,
                                      max_attempts=self.config.max_retries + 1, admits=admits, charge=charge,
                                      on_flush=on_flush)
        try:
            return await dispatch.run(jobs)
        finally:
            await self.backend.aclose()


def _estimate_tokens(req: LLMRequest) -> int:
    """A rough request size for tokens-per-minute limits (4 characters per token plus the output cap)."""
    chars = len(req.prompt) if req.prompt is not None else sum(len(c) for _, c in req.messages or ())
    return chars // 4 + req.max_tokens


def _progress_bar(total: int, desc: str, progress: bool) -> Any:
    if not progress or total < PROGRESS_MIN:
        return None
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit="call", file=sys.stderr, mininterval=0.5, leave=False)


def _run_async(factory: Callable[[], Any]) -> Any:
    """Run a coroutine to completion from sync code, even when this thread already runs a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(factory())
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    t = threading.Thread(target=target, name="llm-generate")
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]
