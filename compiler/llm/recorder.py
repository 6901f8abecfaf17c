"""The write path of the ledger and the cache, in few transactions.

Crash safety rests on two rules. A call's ledger row is committed as ``pending`` before the call is
sent (rows are registered a chunk at a time, just ahead of sending). Its response, its cache entry
and its final ledger row are committed together, so after a ``kill -9`` every call is either done
(cached, priced) or still ``pending`` — the pending ones are the calls that were in flight, the only
ones a rerun can pay for twice. Results are buffered and committed as a group every ~0.1 s, which
keeps the store from dominating CPU at hundreds of calls per second.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pyarrow as pa

from compiler.llm.cache import request_json, response_json
from compiler.llm.prices import Price
from compiler.llm.types import Completion, LLMRequest, LLMResult

if TYPE_CHECKING:
    from compiler.store.db import Store


@dataclass
class Job:
    """One distinct request to send; ``indices`` are the positions in the ``generate`` input it
    serves (identical requests in one call are sent once)."""

    request: LLMRequest
    key: str
    indices: list[int]
    call_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    attempts: int = 0
    tokens_estimate: int = 0
    batch_id: str | None = None


@dataclass(frozen=True)
class CallContext:
    """What every ledger row of one ``generate`` call shares."""

    backend: str
    model: str
    revision: str | None
    role: str
    stage: str
    stage_fp: str
    price: Price
    price_version: str
    batch: bool = False


_FINAL_COLS = ("call_id", "status", "prompt_tokens", "cached_tokens", "completion_tokens",
               "reasoning_tokens", "usd", "latency_s", "attempts", "error")


class Recorder:
    """Buffers finished calls and commits them with their cache entries; ``store`` None records
    nothing (results are still produced)."""

    def __init__(self, store: "Store | None", ctx: CallContext, requests: list[LLMRequest]):
        self.store, self.ctx, self.requests = store, ctx, requests
        self._final: list[tuple] = []
        self._cache: list[tuple[str, str, str]] = []
        self._hits: list[tuple[str, str, str]] = []   # (call_id, key, served_rows json)
        self._failures: list[tuple] = []
        self.results: list[LLMResult | None] = [None] * len(requests)
        self.usd = 0.0

    # -- before sending ------------------------------------------------------------------------
    def register(self, jobs: list[Job]) -> None:
        """Commit ``pending`` ledger rows for jobs about to be sent."""
        if self.store is None or not jobs:
            return
        c = self.ctx
        table = pa.table({
            "call_id": [j.call_id for j in jobs], "key": [j.key for j in jobs],
            "served_rows": [self._served(j.indices[0]) for j in jobs],
            "batch_id": [j.batch_id for j in jobs],
        })
        with self.store.transaction() as con:
            con.register("pending_rows", table)
            con.execute(
                "INSERT INTO llm_calls (call_id, key, backend, model, role, stage, stage_fp, status, "
                "price_version, attempts, served_rows, batch_id, created_at) SELECT call_id, key, ?, ?, ?, ?, "
                "?, 'pending', ?, 0, served_rows::JSON, batch_id, now() FROM pending_rows",
                [c.backend, c.model, c.role, c.stage, c.stage_fp, c.price_version])
            con.unregister("pending_rows")

    def unregister(self, jobs: list[Job]) -> None:
        """Remove the pending rows of jobs that were registered but never sent (budget stop)."""
        if self.store is None or not jobs:
            return
        with self.store.transaction() as con:
            con.execute("DELETE FROM llm_calls WHERE status = 'pending' AND call_id IN "
                        "(SELECT unnest(?::VARCHAR[]))", [[j.call_id for j in jobs]])

    def _served(self, index: int) -> str:
        return json.dumps(list(self.requests[index].served_rows))

    # -- outcomes ------------------------------------------------------------------------------
    def hit(self, index: int, key: str, completion: Completion) -> None:
        """A cache hit: a $0 ledger row and the cached text."""
        call_id = uuid.uuid4().hex
        self._hits.append((call_id, key, self._served(index)))
        self.results[index] = LLMResult(ok=True, text=completion.text, finish_reason=completion.finish_reason,
                                        usage=completion.usage, status="cache_hit", usd=0.0, attempts=0,
                                        call_id=call_id, cache_key=key)

    def complete(self, job: Job, completion: Completion, latency: float) -> float:
        """Record a successful call; returns its dollars. Duplicates in the input become hits."""
        usd = self.ctx.price.cost(completion.usage, batch=self.ctx.batch)
        status = "ok" if job.attempts <= 1 else "retried"
        u = completion.usage
        self._final.append((job.call_id, status, u.prompt_tokens, u.cached_tokens, u.completion_tokens,
                            u.reasoning_tokens, usd, latency, job.attempts, None))
        self._cache.append((job.key, request_json(job.request.key_payload(
            self.ctx.backend, self.ctx.model, self.ctx.revision)), response_json(completion)))
        first, *dups = job.indices
        self.results[first] = LLMResult(ok=True, text=completion.text, finish_reason=completion.finish_reason,
                                        usage=u, status=status, usd=usd, latency_s=latency,
                                        attempts=job.attempts, call_id=job.call_id, cache_key=job.key)
        for index in dups:
            self.hit(index, job.key, completion)
        self.usd += usd
        return usd

    def fail(self, job: Job, reason: str, detail: str, latency: float, usd: float = 0.0) -> None:
        """Record a request that failed for good: ledger row ``failed`` plus a failures row."""
        error = f"{reason}: {detail}" if detail else reason
        self._final.append((job.call_id, "failed", 0, 0, 0, 0, usd, latency, job.attempts, error[:1000]))
        for index in job.indices:
            self._failures.append((job.call_id if index == job.indices[0] else uuid.uuid4().hex,
                                   job.key, reason, detail[:1000], job.attempts, usd, self._served(index)))
            self.results[index] = LLMResult(ok=False, text=None, status="failed", usd=usd, latency_s=latency,
                                            attempts=job.attempts, error=error, call_id=job.call_id,
                                            cache_key=job.key)
        self.usd += usd

    @property
    def buffered(self) -> int:
        return len(self._final) + len(self._hits)

    # -- commit --------------------------------------------------------------------------------
    def flush(self) -> None:
        """Commit everything buffered in one transaction."""
        if not (self._final or self._hits or self._failures):
            return
        if self.store is None:
            self._final, self._cache, self._hits, self._failures = [], [], [], []
            return
        with self.store.transaction() as con:
            self._write_cache(con)
            self._write_final(con)
            self._write_hits(con)
            self._write_failures(con)
        self._final, self._cache, self._hits, self._failures = [], [], [], []

    def _write_cache(self, con) -> None:
        if not self._cache:
            return
        keys, reqs, resps = zip(*self._cache)
        con.register("cache_rows", pa.table({"key": keys, "request": reqs, "response": resps}))
        con.execute("INSERT INTO llm_cache SELECT key, ?, ?, request::JSON, response::JSON, now() "
                    "FROM cache_rows ON CONFLICT DO NOTHING", [self.ctx.backend, self.ctx.model])
        con.unregister("cache_rows")

    def _write_final(self, con) -> None:
        if not self._final:
            return
        cols = list(zip(*self._final))
        con.register("final_rows", pa.table(dict(zip(_FINAL_COLS, cols)),
                                            schema=_FINAL_SCHEMA))
        con.execute(
            "UPDATE llm_calls SET status = f.status, prompt_tokens = f.prompt_tokens, "
            "cached_tokens = f.cached_tokens, completion_tokens = f.completion_tokens, "
            "reasoning_tokens = f.reasoning_tokens, usd = f.usd, latency_s = f.latency_s, "
            "attempts = f.attempts, error = f.error, finished_at = now() "
            "FROM final_rows f WHERE llm_calls.call_id = f.call_id")
        con.unregister("final_rows")

    def _write_hits(self, con) -> None:
        if not self._hits:
            return
        ids, keys, served = zip(*self._hits)
        c = self.ctx
        con.register("hit_rows", pa.table({"call_id": ids, "key": keys, "served_rows": served}))
        con.execute(
            "INSERT INTO llm_calls (call_id, key, backend, model, role, stage, stage_fp, status, usd, "
            "price_version, attempts, served_rows, created_at, finished_at) SELECT call_id, key, ?, ?, ?, "
            "?, ?, 'cache_hit', 0, ?, 0, served_rows::JSON, now(), now() FROM hit_rows",
            [c.backend, c.model, c.role, c.stage, c.stage_fp, c.price_version])
        con.unregister("hit_rows")

    def _write_failures(self, con) -> None:
        if not self._failures:
            return
        cols = list(zip(*self._failures))
        names = ("call_id", "key", "reason", "detail", "attempts", "usd", "served_rows")
        c = self.ctx
        con.register("failure_rows", pa.table(dict(zip(names, cols))))
        con.execute(
            "INSERT INTO llm_failures SELECT call_id, key, ?, ?, ?, ?, ?, reason, detail, attempts, usd, "
            "served_rows::JSON, now() FROM failure_rows ON CONFLICT DO NOTHING",
            [c.backend, c.model, c.role, c.stage, c.stage_fp])
        con.unregister("failure_rows")


_FINAL_SCHEMA = pa.schema([
    ("call_id", pa.string()), ("status", pa.string()), ("prompt_tokens", pa.int64()),
    ("cached_tokens", pa.int64()), ("completion_tokens", pa.int64()), ("reasoning_tokens", pa.int64()),
    ("usd", pa.float64()), ("latency_s", pa.float64()), ("attempts", pa.int64()), ("error", pa.string()),
])
