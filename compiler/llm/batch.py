"""Batch mode for the ``openai`` backend (``batch: true``): the OpenAI Batch API at its discount.

Rounds: upload a JSONL file of requests, create a batch, poll, download its output and error files,
and resubmit the items that failed (up to ``max_attempts`` submissions per item). Every item keeps
one ledger row (``custom_id`` is its call id) and its answer goes to the cache like any other call.

A crash never submits twice. Before anything is uploaded, one transaction records the local batch
(``llm_batches``, status ``preparing``) and the items' pending ledger rows pointing at it; the
provider's batch carries our local id in its metadata, and its id is stored as soon as it exists.
A rerun finds pending rows of its requests that belong to an unfinished batch and picks that batch
up: by stored id, else by looking for our local id in the provider's batch list, and only when the
provider never saw it does it submit those items again. These pending rows are the one place where
ledger rows are written ahead of sending (:meth:`~compiler.llm.recorder.Recorder.register`, straight to
DuckDB, not the journal), and the store's recovery leaves them pending for the rerun to adopt; the
answers collected are journaled like any other call's before they are used.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from typing import Any, Callable

from compiler.llm.backend import FatalError, RetryableError
from compiler.llm.dispatch import Outcome
from compiler.llm.openai_backend import OpenAIBackend, parse_completion
from compiler.llm.recorder import Job, Recorder, new_call_id

TERMINAL = {"completed", "failed", "expired", "cancelled"}
MAX_ITEMS = 50_000   # the Batch API's limit on requests per batch


class BatchRun:
    def __init__(self, backend: OpenAIBackend, recorder: Recorder, *, max_attempts: int, poll_s: float):
        self.backend, self.recorder = backend, recorder
        self.max_attempts, self.poll_s = max_attempts, poll_s
        self.store = recorder.store

    # -- bookkeeping in the store ----------------------------------------------------------------
    def _adopt_pending(self, jobs: list[Job]) -> dict[str, list[Job]]:
        """Jobs whose request already sits in an unfinished batch of an earlier run, by batch."""
        if self.store is None:
            return {}
        rows = self.store.con.execute(
            "SELECT c.key, c.call_id, c.batch_id, c.attempts FROM llm_calls c JOIN llm_batches b "
            "ON c.batch_id = b.local_id WHERE c.status = 'pending' AND b.status IN ('preparing', 'submitted') "
            "AND c.key IN (SELECT unnest(?::VARCHAR[]))", [[j.key for j in jobs]]).fetchall()
        by_key = {j.key: j for j in jobs}
        adopted: dict[str, list[Job]] = defaultdict(list)
        for key, call_id, batch_id, attempts in rows:
            job = by_key.get(key)
            if job is not None and job.batch_id is None:
                job.call_id, job.batch_id, job.attempts = call_id, batch_id, max(attempts, 1)
                adopted[batch_id].append(job)
        return adopted

    def _record_batch(self, local_id: str, endpoint: str, jobs: list[Job], round_no: int) -> None:
        """Commit the local batch row and the items' pending rows before anything is uploaded."""
        c = self.recorder.ctx
        fresh = [j for j in jobs if j.attempts == 0]
        for j in jobs:
            j.batch_id, j.attempts = local_id, j.attempts + 1
        if self.store is None:
            return
        with self.store.transaction() as con:
            con.execute("INSERT INTO llm_batches VALUES (?, ?, ?, ?, ?, ?, ?, 'preparing', NULL, NULL, ?, ?, "
                        "now(), now())", [local_id, c.backend, c.model, c.role, c.stage, c.stage_fp, endpoint,
                                          len(jobs), round_no])
        self.recorder.register(fresh)   # pending rows carry batch_id (set above)
        again = [j for j in jobs if j.attempts > 1]
        if again:
            with self.store.transaction() as con:
                con.execute("UPDATE llm_calls SET batch_id = $1, attempts = f.att FROM (SELECT unnest($2) AS id, "
                            "unnest($3::INTEGER[]) AS att) f WHERE call_id = f.id",
                            [local_id, [j.call_id for j in again], [j.attempts for j in again]])

    def _update_batch(self, local_id: str, **fields: Any) -> None:
        if self.store is None:
            return
        sets = ", ".join(f"{k} = ?" for k in fields)
        with self.store.transaction() as con:
            con.execute(f"UPDATE llm_batches SET {sets}, updated_at = now() WHERE local_id = ?",
                        [*fields.values(), local_id])

    def _batch_row(self, local_id: str) -> tuple[str | None, str]:
        if self.store is None:
            return None, "/v1/chat/completions"
        row = self.store.con.execute("SELECT remote_id, endpoint FROM llm_batches WHERE local_id = ?",
                                     [local_id]).fetchone()
        return (row[0], row[1]) if row else (None, "/v1/chat/completions")

    # -- talking to the provider ---------------------------------------------------------------------
    async def _submit(self, jobs: list[Job], round_no: int) -> str:
        local_id = "lb-" + new_call_id()
        endpoint = self.backend.path(jobs[0].request)
        self._record_batch(local_id, endpoint, jobs, round_no)
        lines = "".join(json.dumps({"custom_id": j.call_id, "method": "POST", "url": endpoint,
                                    "body": self.backend.body(j.request)}) + "\n" for j in jobs)
        client = self.backend.client()
        upload = await client.files.create(file=(f"{local_id}.jsonl", lines.encode()), purpose="batch")
        self._update_batch(local_id, input_file_id=upload.id)
        batch = await client.batches.create(input_file_id=upload.id, endpoint=endpoint, completion_window="24h",
                                            metadata={"distillc_local_id": local_id})
        self._update_batch(local_id, remote_id=batch.id, status="submitted")
        return batch.id

    async def _find_remote(self, local_id: str) -> str | None:
        """The provider's batch carrying our local id (a crash between create and recording it)."""
        async for batch in self.backend.client().batches.list(limit=100):
            if (batch.metadata or {}).get("distillc_local_id") == local_id:
                self._update_batch(local_id, remote_id=batch.id, status="submitted")
                return batch.id
        return None

    async def _wait(self, remote_id: str) -> Any:
        client = self.backend.client()
        while True:
            batch = await client.batches.retrieve(remote_id)
            if batch.status in TERMINAL:
                return batch
            await asyncio.sleep(self.poll_s)

    async def _download(self, file_id: str | None) -> list[dict[str, Any]]:
        if not file_id:
            return []
        content = await self.backend.client().files.content(file_id)
        return [json.loads(line) for line in content.text.splitlines() if line.strip()]

    # -- one batch from submission (or adoption) to results ----------------------------------------
    async def collect(self, local_id: str, remote_id: str, jobs: list[Job], started: float,
                      charge: Callable[[float], None]) -> list[tuple[Job, str]]:
        """Record every answered item; return the failed ones with their reasons."""
        batch = await self._wait(remote_id)
        by_id = {j.call_id: j for j in jobs}
        answered: set[str] = set()
        chat = "chat" in self.backend.path(jobs[0].request)
        for item in await self._download(batch.output_file_id):
            job = by_id.get(item.get("custom_id"))
            resp = item.get("response") or {}
            if job is None or resp.get("status_code") != 200:
                continue
            try:
                completion = parse_completion(resp["body"], chat=chat)
            except (RetryableError, FatalError):
                continue
            charge(self.recorder.complete(job, completion, time.monotonic() - started))
            answered.add(job.call_id)
        errors = {e.get("custom_id"): (e.get("error") or {}).get("code") or "batch_item_error"
                  for e in await self._download(batch.error_file_id)}
        self._update_batch(local_id, status="done" if batch.status == "completed" else "failed")
        self.recorder.flush()
        return [(j, errors.get(j.call_id) or f"batch_{batch.status}") for j in jobs if j.call_id not in answered]


async def run_batch(backend: OpenAIBackend, recorder: Recorder, jobs: list[Job], *, admits: Callable[[], bool],
                    charge: Callable[[float], None], max_attempts: int, poll_s: float = 30.0) -> Outcome:
    """Send ``jobs`` through the Batch API, resuming unfinished batches of earlier runs first."""
    run = BatchRun(backend, recorder, max_attempts=max_attempts, poll_s=poll_s)
    outcome = Outcome()
    try:
        retry = await _resume(run, jobs, charge, outcome)
        fresh = [j for j in jobs if j.batch_id is None] + retry
        round_no = 0
        while fresh:
            if not admits():
                outcome.not_sent.extend(j for j in fresh if j.attempts == 0)
                for job in (j for j in fresh if j.attempts > 0):
                    recorder.fail(job, "budget", "budget reached before resubmission", 0.0)
                recorder.flush()
                break
            fresh = await _round(run, fresh, round_no, charge, outcome)
            round_no += 1
    finally:
        await backend.aclose()
    return outcome


async def _resume(run: BatchRun, jobs: list[Job], charge: Callable[[float], None],
                  outcome: Outcome) -> list[Job]:
    """Finish the batches an earlier run left behind; returns their items that still need sending."""
    retry: list[Job] = []
    for local_id, adopted in run._adopt_pending(jobs).items():
        remote_id, _ = run._batch_row(local_id)
        remote_id = remote_id or await run._find_remote(local_id)
        if remote_id is None:   # the provider never saw it: safe to submit these items again
            run._update_batch(local_id, status="failed")
            retry.extend(adopted)
            continue
        failed = await run.collect(local_id, remote_id, adopted, time.monotonic(), charge)
        retry.extend(_give_up(run, failed))
    return retry


async def _round(run: BatchRun, jobs: list[Job], round_no: int, charge: Callable[[float], None],
                 outcome: Outcome) -> list[Job]:
    """Submit ``jobs`` (one batch per endpoint and per ``MAX_ITEMS``), wait for all of them together,
    and return the items to resubmit."""
    outcome.sent += sum(1 for j in jobs if j.attempts == 0)
    groups: dict[str, list[Job]] = defaultdict(list)
    for j in jobs:
        groups[run.backend.path(j.request)].append(j)
    parts = [g[i:i + MAX_ITEMS] for g in groups.values() for i in range(0, len(g), MAX_ITEMS)]
    started = time.monotonic()
    submitted = [(part, await run._submit(part, round_no)) for part in parts]
    failed = await asyncio.gather(*(run.collect(part[0].batch_id, remote_id, part, started, charge)
                                    for part, remote_id in submitted))
    return _give_up(run, [f for group in failed for f in group])


def _give_up(run: BatchRun, failed: list[tuple[Job, str]]) -> list[Job]:
    """Record items out of attempts as failures; return the rest for another round."""
    again = []
    for job, reason in failed:
        if job.attempts >= run.max_attempts:
            run.recorder.fail(job, reason, "failed in every batch submission", 0.0)
        else:
            again.append(job)
    run.recorder.flush()
    return again
