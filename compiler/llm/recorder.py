"""The write path of the ledger and the cache: a journal line per event, DuckDB in group commits.

Crash safety rests on the journal beside the store (:mod:`compiler.store.journal`). Right before a
request goes out (each attempt) a ``sent`` event is journaled; an answer is journaled (``ok``: its
text, usage and dollars) before it is used and before its concurrency slot goes to another request;
a request that fails for good is journaled as ``failed``. Each line is one plain ``write()``, so it
survives a ``kill -9`` of the process. The same events are folded into an in-memory buffer
(:class:`~compiler.llm.fold.Rows`) that is committed to DuckDB as a group (every 512 rows or 0.5 s;
DuckDB statements cost milliseconds each, whatever their size), after which the journal segment
holding them is deleted. A store opened after a crash folds the leftover segments in first: every
answer that reached the journal is cached and billed, and every call that was sent with no answer
journaled becomes an ``interrupted`` ledger row with the bound of what it could have cost. Those are
the only calls a rerun can pay for twice.

Ledger rows are created when a request is actually sent, never ahead of it. The one exception is the
Batch API (:mod:`compiler.llm.batch`), which commits its items' ``pending`` rows with their batch id
straight to DuckDB (:meth:`Recorder.register`) before anything is uploaded, so that a crash never
submits a batch twice.
"""

from __future__ import annotations

import itertools
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from compiler.llm.cache import response_json
from compiler.llm import fold
from compiler.llm.prices import Price
from compiler.llm.types import Completion, LLMRequest, LLMResult, Usage, is_transient
from compiler.store import journal

if TYPE_CHECKING:
    from compiler.store.db import Store

CHAT_OVERHEAD = 8   # tokens of chat formatting per message and for the reply's cue, at most


class CallIds:
    """Unique call ids without a uuid per call: a random prefix per process plus a counter."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self.prefix = uuid.uuid4().hex[:20]
        self._counter = itertools.count()

    def __call__(self) -> str:
        return f"{self.prefix}{next(self._counter):012x}"


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
    size: list[float] | None = None    # see request_size, computed when first sent
    served: str | None = None          # JSON of the rows its first request serves, computed when first needed


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


def request_size(req: LLMRequest, price: Price, *, batch: bool) -> list[float]:
    """[estimated prompt tokens, at most that many prompt tokens, at most that many completion
    tokens, at most that many dollars]. The estimate is about 4 characters a token; the bound counts
    one token per UTF-8 byte (no tokenizer makes a token of less) plus chat formatting, and the
    request's ``max_tokens`` for the completion."""
    texts = [req.prompt or ""] if req.messages is None else [c for _, c in req.messages]
    overhead = CHAT_OVERHEAD * (len(texts) + 1)
    est = sum(len(t) for t in texts) // 4 + (4 * len(texts) + 3 if req.messages is not None else 1)
    most = sum(len(t) if t.isascii() else len(t.encode("utf-8")) for t in texts) + overhead
    usd = price.cost(Usage(prompt_tokens=most, completion_tokens=req.max_tokens), batch=batch)
    return [est, most, req.max_tokens, usd]


class Recorder:
    """Journals and buffers the calls of one ``generate`` call; :meth:`take` and :meth:`write`
    commit them. ``store`` None records nothing (results are still produced)."""

    def __init__(self, store: "Store | None", ctx: CallContext, requests: list[LLMRequest]):
        self.store, self.ctx, self.requests = store, ctx, requests
        self._ctx = [ctx.backend, ctx.model, ctx.role, ctx.stage, ctx.stage_fp, ctx.price_version]
        self._journal = store.journal_writer() if store is not None else None
        self._since = time.time() - 1.0        # the calls it sends are created after this (see fold.Rows.since)
        self._buf = fold.Rows(since=self._since)
        self.results: list[LLMResult | None] = [None] * len(requests)
        self.usd = 0.0

    def _served(self, index: int) -> str:
        return json.dumps(list(self.requests[index].served_rows))

    def _event(self, kind: str, job: Job, **fields: object) -> dict[str, object]:
        if job.served is None:
            job.served = self._served(job.indices[0])
        return {"ev": kind, "t": time.time(), "id": job.call_id, "key": job.key, "ctx": self._ctx,
                "served": job.served, "att": job.attempts, **fields}

    def _record(self, event: dict[str, object]) -> None:
        """Journal the event (it survives a kill from here on), then buffer its rows."""
        if self._journal is None:
            return
        self._journal.append(event)
        self._buf.add(event)

    def _sent_event(self, job: Job) -> dict[str, object]:
        if job.size is None:
            job.size = request_size(job.request, self.ctx.price, batch=self.ctx.batch)
        return self._event("sent", job, batch=job.batch_id, size=job.size)

    # -- sending -------------------------------------------------------------------------------
    def sent(self, job: Job) -> None:
        """``job`` is about to be sent (its ``attempts`` already counts this attempt)."""
        if self._journal is not None:
            self._record(self._sent_event(job))

    def retrying(self, job: Job, reason: str, detail: str) -> None:
        """An attempt of ``job`` failed and another will follow after a pause: not in flight meanwhile."""
        self._record(self._event("error", job, reason=reason, detail=detail[:1000], size=job.size))

    def register(self, jobs: list[Job]) -> None:
        """Commit ``pending`` rows for jobs before they are handed over in a batch (Batch API)."""
        if self.store is None or not jobs:
            return
        rows = fold.Rows()
        for job in jobs:
            rows.add(self._sent_event(job))
        with self.store.transaction() as con:
            fold.write(con, rows)

    # -- outcomes ------------------------------------------------------------------------------
    def hit(self, index: int, key: str, completion: Completion) -> None:
        """A cache hit: a $0 ledger row (buffered, not journaled: it costs nothing to redo) and the
        cached text."""
        call_id = new_call_id()
        if self.store is not None:
            self._buf.add_hit(call_id, key, self._ctx, self._served(index), time.time())
        self.results[index] = LLMResult(ok=True, text=completion.text, finish_reason=completion.finish_reason,
                                        usage=completion.usage, status="cache_hit", usd=0.0, attempts=0,
                                        call_id=call_id, cache_key=key, logprobs=completion.logprobs)

    def complete(self, job: Job, completion: Completion, latency: float) -> float:
        """Record an answer (journaled before this returns); returns its dollars. Duplicates in the
        input become hits."""
        usd = self.ctx.price.cost(completion.usage, batch=self.ctx.batch)
        status = "ok" if job.attempts <= 1 else "retried"
        u = completion.usage
        first, *dups = job.indices
        dup_ids = [new_call_id() for _ in dups]
        if self._journal is not None:
            self._record(self._event(
                "ok", job, status=status, usage=[u.prompt_tokens, u.cached_tokens, u.completion_tokens,
                                                 u.reasoning_tokens], usd=usd, lat=latency,
                req=job.key_json or job.request.key_json(self.ctx.backend, self.ctx.model, self.ctx.revision),
                resp=response_json(completion), dups=[[i, self._served(x)] for i, x in zip(dup_ids, dups)]))
        self.results[first] = LLMResult(ok=True, text=completion.text, finish_reason=completion.finish_reason,
                                        usage=u, status=status, usd=usd, latency_s=latency,
                                        attempts=job.attempts, call_id=job.call_id, cache_key=job.key,
                                        logprobs=completion.logprobs)
        for index, call_id in zip(dups, dup_ids):
            self.results[index] = LLMResult(ok=True, text=completion.text, finish_reason=completion.finish_reason,
                                            usage=u, status="cache_hit", usd=0.0, attempts=0, call_id=call_id,
                                            cache_key=job.key, logprobs=completion.logprobs)
        self.usd += usd
        return usd

    def fail(self, job: Job, reason: str, detail: str, latency: float, usd: float = 0.0) -> None:
        """Record a request that failed for good: ledger row ``failed`` plus a failures row for each
        request it served."""
        error = f"{reason}: {detail}" if detail else reason
        ids = [job.call_id if n == 0 else new_call_id() for n in range(len(job.indices))]
        self._record(self._event("failed", job, reason=reason, detail=detail[:1000], error=error[:1000], usd=usd,
                                 lat=latency, rows=[[i, self._served(x)] for i, x in zip(ids, job.indices)]))
        for index in job.indices:
            self.results[index] = LLMResult(ok=False, text=None, status="failed", usd=usd, latency_s=latency,
                                            attempts=job.attempts, error=error, call_id=job.call_id,
                                            cache_key=job.key, transient=is_transient(reason))
        self.usd += usd

    @property
    def buffered(self) -> int:
        return len(self._buf)

    # -- commit --------------------------------------------------------------------------------
    def take(self) -> fold.Rows:
        """Hand over everything buffered with the journal segment holding it (to :meth:`write`,
        possibly on another thread); what happens next goes to a new segment."""
        taken, self._buf = self._buf, fold.Rows(since=self._since)
        if self._journal is not None:
            taken.segment = self._journal.seal()
        return taken

    def flush(self) -> None:
        self.write(self.take())

    def write(self, rows: fold.Rows) -> None:
        """Commit ``rows`` in one transaction, then delete the journal segment they came from."""
        if self.store is None:
            return
        if not rows.empty:
            with self.store.transaction() as con:
                fold.write(con, rows)
        journal.discard(rows.segment)
