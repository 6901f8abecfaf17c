"""The write path of the ledger and the cache, in few transactions.

Crash safety rests on two rules. A call's ledger row is committed as ``pending`` before the call is
sent (rows are registered a chunk at a time, just ahead of sending). Its response, its cache entry
and its final ledger row are committed together, so after a ``kill -9`` every call is either done
(cached, priced) or still ``pending`` — the pending ones are the calls that were in flight, the only
ones a rerun can pay for twice. Results are buffered and committed as a group (every 128 rows or
0.5 s; DuckDB statements cost milliseconds each, whatever their size), and the concurrent dispatcher
runs the writes on a thread of their own so the event loop never waits for the disk.
"""

from __future__ import annotations

import itertools
import json
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from compiler.llm.cache import response_json
from compiler.llm.prices import Price
from compiler.llm.types import Completion, LLMRequest, LLMResult, is_transient

if TYPE_CHECKING:
    import duckdb

    from compiler.store.db import Store


class CallIds:
    """Unique call ids without a uuid per call: a random prefix per process plus a counter."""

    def __init__(self) -> None:
        self._prefix = uuid.uuid4().hex[:20]
        self._counter = itertools.count()

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._counter):012x}"


new_call_id = CallIds()


@dataclass
class Job:
    """One distinct request to send; ``indices`` are the positions in the ``generate`` input it
    serves (identical requests in one call are sent once)."""

    request: LLMRequest
    key: str
    indices: list[int]
    key_json: str = ""
    call_id: str = field(default_factory=new_call_id)
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


@dataclass
class Pending:
    """Rows taken from the recorder's buffers, ready to be written in one transaction."""

    final: list[tuple] = field(default_factory=list)
    cache: list[tuple[str, str, str]] = field(default_factory=list)
    hits: list[tuple[str, str, str]] = field(default_factory=list)
    failures: list[tuple] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.final) + len(self.hits)


class Recorder:
    """Buffers finished calls and commits them with their cache entries; ``store`` None records
    nothing (results are still produced)."""

    def __init__(self, store: "Store | None", ctx: CallContext, requests: list[LLMRequest]):
        self.store, self.ctx, self.requests = store, ctx, requests
        self._buf = Pending()
        self.results: list[LLMResult | None] = [None] * len(requests)
        self.usd = 0.0

    # -- before sending ------------------------------------------------------------------------
    def register(self, jobs: list[Job]) -> None:
        """Commit ``pending`` ledger rows for jobs about to be sent."""
        if self.store is None or not jobs:
            return
        c = self.ctx
        with self.store.transaction() as con:
            con.execute(
                "INSERT INTO llm_calls (call_id, key, backend, model, role, stage, stage_fp, status, "
                "price_version, attempts, served_rows, batch_id, created_at) SELECT unnest($1), unnest($2), "
                "$3, $4, $5, $6, $7, 'pending', $8, 0, unnest($9)::JSON, unnest($10), now()",
                [[j.call_id for j in jobs], [j.key for j in jobs], c.backend, c.model, c.role, c.stage,
                 c.stage_fp, c.price_version, [self._served(j.indices[0]) for j in jobs],
                 [j.batch_id for j in jobs]])

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
        call_id = new_call_id()
        self._buf.hits.append((call_id, key, self._served(index)))
        self.results[index] = LLMResult(ok=True, text=completion.text, finish_reason=completion.finish_reason,
                                        usage=completion.usage, status="cache_hit", usd=0.0, attempts=0,
                                        call_id=call_id, cache_key=key)

    def complete(self, job: Job, completion: Completion, latency: float) -> float:
        """Record a successful call; returns its dollars. Duplicates in the input become hits."""
        usd = self.ctx.price.cost(completion.usage, batch=self.ctx.batch)
        status = "ok" if job.attempts <= 1 else "retried"
        u = completion.usage
        self._buf.final.append((job.call_id, status, u.prompt_tokens, u.cached_tokens, u.completion_tokens,
                                u.reasoning_tokens, usd, latency, job.attempts, None))
        self._buf.cache.append((job.key, job.key_json or job.request.key_json(
            self.ctx.backend, self.ctx.model, self.ctx.revision), response_json(completion)))
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
        self._buf.final.append((job.call_id, "failed", 0, 0, 0, 0, usd, latency, job.attempts, error[:1000]))
        for index in job.indices:
            call_id = job.call_id if index == job.indices[0] else new_call_id()
            self._buf.failures.append((call_id, job.key, reason, detail[:1000], job.attempts, usd,
                                       self._served(index)))
            self.results[index] = LLMResult(ok=False, text=None, status="failed", usd=usd, latency_s=latency,
                                            attempts=job.attempts, error=error, call_id=job.call_id,
                                            cache_key=job.key, transient=is_transient(reason))
        self.usd += usd

    @property
    def buffered(self) -> int:
        return len(self._buf)

    # -- commit --------------------------------------------------------------------------------
    def take(self) -> Pending:
        """Hand over everything buffered (to :meth:`write`, possibly on another thread)."""
        taken, self._buf = self._buf, Pending()
        return taken

    def flush(self) -> None:
        self.write(self.take())

    def write(self, rows: Pending) -> None:
        """Commit ``rows`` in one transaction."""
        if self.store is None or not (rows.final or rows.hits or rows.failures):
            return
        with self.store.transaction() as con:
            self._write_cache(con, rows.cache)
            self._write_final(con, rows.final)
            self._write_hits(con, rows.hits)
            self._write_failures(con, rows.failures)

    def _write_cache(self, con: "duckdb.DuckDBPyConnection", rows: list[tuple]) -> None:
        if rows:
            keys, reqs, resps = (list(c) for c in zip(*rows))
            con.execute("INSERT INTO llm_cache SELECT unnest($1), $2, $3, unnest($4)::JSON, unnest($5)::JSON, "
                        "now() ON CONFLICT DO NOTHING", [keys, self.ctx.backend, self.ctx.model, reqs, resps])

    def _write_final(self, con: "duckdb.DuckDBPyConnection", rows: list[tuple]) -> None:
        if not rows:
            return
        cols = [list(c) for c in zip(*rows)]
        con.execute(
            "UPDATE llm_calls SET status = f.status, prompt_tokens = f.p, cached_tokens = f.ca, "
            "completion_tokens = f.co, reasoning_tokens = f.r, usd = f.usd, latency_s = f.lat, "
            "attempts = f.att, error = f.err, finished_at = now() FROM (SELECT unnest($1) AS call_id, "
            "unnest($2) AS status, unnest($3::BIGINT[]) AS p, unnest($4::BIGINT[]) AS ca, "
            "unnest($5::BIGINT[]) AS co, unnest($6::BIGINT[]) AS r, unnest($7::DOUBLE[]) AS usd, "
            "unnest($8::DOUBLE[]) AS lat, unnest($9::INTEGER[]) AS att, unnest($10::VARCHAR[]) AS err) f "
            "WHERE llm_calls.call_id = f.call_id", cols)

    def _write_hits(self, con: "duckdb.DuckDBPyConnection", rows: list[tuple]) -> None:
        if not rows:
            return
        ids, keys, served = (list(c) for c in zip(*rows))
        c = self.ctx
        con.execute(
            "INSERT INTO llm_calls (call_id, key, backend, model, role, stage, stage_fp, status, usd, "
            "price_version, attempts, served_rows, created_at, finished_at) SELECT unnest($1), unnest($2), "
            "$3, $4, $5, $6, $7, 'cache_hit', 0, $8, 0, unnest($9)::JSON, now(), now()",
            [ids, keys, c.backend, c.model, c.role, c.stage, c.stage_fp, c.price_version, served])

    def _write_failures(self, con: "duckdb.DuckDBPyConnection", rows: list[tuple]) -> None:
        if not rows:
            return
        cols = [list(col) for col in zip(*rows)]
        c = self.ctx
        con.execute(
            "INSERT INTO llm_failures SELECT unnest($1), unnest($2), $8, $9, $10, $11, $12, unnest($3), "
            "unnest($4), unnest($5::INTEGER[]), unnest($6::DOUBLE[]), unnest($7)::JSON, now() "
            "ON CONFLICT DO NOTHING", cols + [c.backend, c.model, c.role, c.stage, c.stage_fp])
