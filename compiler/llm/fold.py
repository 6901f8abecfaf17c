"""Journal events to ledger and cache rows, and the one transaction that commits them.

The recorder journals every event of a call as it happens (:mod:`compiler.store.journal`) and folds
the same event into an in-memory :class:`Rows` buffer that the next group commit writes. Recovery
folds the segments a dead process left behind with the same :meth:`Rows.add` and writes them with the
same :func:`write`, so there is one write path. Events (JSON objects; every one carries ``t`` (epoch
seconds), the call ``id``, its cache ``key``, its context ``ctx`` = [backend, model, role, stage,
stage_fp, price_version], the ``served`` row ids as JSON and the attempt count ``att``):

- ``sent``: right before a request goes out (each attempt). Its ledger row is created ``pending``
  with the request's size: ``size`` = [estimated prompt tokens (about 4 characters a token, an
  estimate), at most that many prompt tokens (one per UTF-8 byte plus message overhead), at most
  ``max_tokens`` completion tokens, at most that many dollars at the model's price]; ``batch`` is
  the local Batch API batch, if any.
- ``error``: an attempt failed and another will follow after a pause (``reason``, ``detail``,
  ``size``): the row is ``retrying``, no longer in flight.
- ``ok``: an answer, journaled before it is used: the cache entry (``req``, ``resp``), the final
  ledger row (``status``, ``usage`` = [prompt, cached, completion, reasoning], ``usd``, ``lat``) and
  a $0 ``cache_hit`` row for each identical request of the same call (``dups``: [call id, served]).
- ``failed``: a request that failed for good: its ledger row and one ``llm_failures`` row per request
  it served (``rows``: [call id, served]), with ``reason``, ``detail``, ``error``, ``usd``, ``lat``.

Replaying is idempotent, so a segment replayed after its transaction committed (a kill between the
commit and the file's deletion) changes nothing: ledger rows are created ON CONFLICT DO NOTHING, an
unfinished row takes the latest ``sent``/``error`` state by call id (a finished one is never
reopened) and is finished by call id; cache entries, cache hits and failures insert ON CONFLICT DO
NOTHING.

:func:`recover` then settles the unfinished rows of dead processes. ``pending`` ones become
``interrupted``: calls in flight when the process died, whose answer never reached the journal (the
server may or may not have answered, and billed, them; their ``max_*`` columns bound what they could
have cost). There are at most as many per crash as the concurrency allowed. ``retrying`` ones become
``failed`` (every attempt got an error, nothing was outstanding; the next run sends them again).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compiler.store import journal

if TYPE_CHECKING:
    import duckdb

    from compiler.store.db import Store

INTERRUPTED_ERROR = "sent, but no answer was recorded before the process ended"
ABANDONED_ERROR = "the process ended before the next attempt"


@dataclass
class Rows:
    """Rows to commit in one transaction, from events; ``segment`` is the journal file holding them.

    ``sent`` holds the ledger rows to create (a call's first attempt), ``changed`` the state of rows
    created by an earlier group (a failed attempt, a retry). Live group commits create rows with a
    plain INSERT, since a call's first event is always its first ``sent`` (conflict handling costs
    DuckDB twice as much); ``replay`` (recovery) inserts ON CONFLICT DO NOTHING instead.

    ``since``, when the writer knows it (a live recorder's start: the calls it sends are created
    after it), lets the finishing UPDATE skip the ledger's older row groups by their ``created_at``
    range instead of joining every row the ledger holds; rows it does not reach that way (a Batch
    API call an earlier run created and this one finishes) are finished by the unbounded UPDATE, so
    the bound only ever saves time."""

    replay: bool = False
    sent: dict[str, tuple] = field(default_factory=dict)
    changed: dict[str, tuple] = field(default_factory=dict)
    final: list[tuple] = field(default_factory=list)
    cache: list[tuple] = field(default_factory=list)
    hits: list[tuple] = field(default_factory=list)
    failures: list[tuple] = field(default_factory=list)
    segment: Path | None = None
    since: float | None = None   # epoch seconds; most rows ``final`` finishes were created after it

    def __len__(self) -> int:
        """Finished calls (answers, failures, cache hits): what progress counts."""
        return len(self.final) + len(self.hits)

    @property
    def empty(self) -> bool:
        return not (self.sent or self.changed or self.final or self.hits or self.failures)

    def add(self, ev: dict[str, Any]) -> None:
        """Fold one event in. On replay, a finished call's final event also creates its ledger row,
        in case its ``sent`` event was in a segment already gone."""
        kind = ev.get("ev")
        if kind in ("sent", "error"):
            self._state(ev, kind)
            return
        if kind == "ok":
            self._answer(ev)
        elif kind == "failed":
            self._failure(ev)
        else:
            return
        if self.replay:
            self.sent.setdefault(ev["id"], _sent_row(ev, started=ev["t"] - (ev.get("lat") or 0.0)))

    def _state(self, ev: dict[str, Any], kind: str) -> None:
        """In flight (``sent``) or waiting for its next attempt (``error``)."""
        call_id = ev["id"]
        status, error = ("pending", None) if kind == "sent" else ("retrying", f"{ev['reason']}: {ev['detail']}"[:1000])
        row = self.sent.get(call_id)
        if row is not None:                                  # created in this same group
            self.sent[call_id] = (*row[:8], ev["att"], *row[9:16], status, error)
        elif kind == "sent" and ev["att"] == 1:               # the call's first event
            self.sent[call_id] = _sent_row(ev)
        else:
            self.changed[call_id] = (call_id, status, ev["att"], error)

    def add_hit(self, call_id: str, key: str, ctx: list[str], served: str, t: float) -> None:
        self.hits.append((call_id, key, *ctx, served, t))

    def _answer(self, ev: dict[str, Any]) -> None:
        p, ca, co, r = ev["usage"]
        self.final.append((ev["id"], ev["status"], p, ca, co, r, ev["usd"], ev["lat"], ev["att"], None, ev["t"]))
        backend, model = ev["ctx"][0], ev["ctx"][1]
        self.cache.append((ev["key"], backend, model, ev["req"], ev["resp"], ev["t"]))
        for call_id, served in ev.get("dups") or ():
            self.add_hit(call_id, ev["key"], ev["ctx"], served, ev["t"])

    def _failure(self, ev: dict[str, Any]) -> None:
        self.final.append((ev["id"], "failed", 0, 0, 0, 0, ev["usd"], ev["lat"], ev["att"], ev["error"], ev["t"]))
        backend, model, role, stage, stage_fp, _ = ev["ctx"]
        for call_id, served in ev["rows"]:
            self.failures.append((call_id, ev["key"], backend, model, role, stage, stage_fp, ev["reason"],
                                  ev["detail"], ev["att"], ev["usd"], served, ev["t"]))


def _sent_row(ev: dict[str, Any], started: float | None = None, status: str = "pending",
              error: str | None = None) -> tuple:
    est, max_prompt, max_completion, max_usd = ev.get("size") or (None, None, None, None)
    return (ev["id"], ev["key"], *ev["ctx"], ev["att"], ev["served"], ev.get("batch"),
            ev["t"] if started is None else started, est, max_prompt, max_completion, max_usd, status, error)


def _columns(rows: list[tuple] | Any) -> list[list[Any]]:
    return [list(c) for c in zip(*rows)]


def write(con: "duckdb.DuckDBPyConnection", rows: Rows) -> None:
    """Commit ``rows`` through ``con`` (the caller holds the transaction)."""
    conflict = " ON CONFLICT DO NOTHING" if rows.replay else ""
    if rows.sent:
        con.execute(
            "INSERT INTO llm_calls (call_id, key, backend, model, role, stage, stage_fp, price_version, attempts, "
            "served_rows, batch_id, created_at, est_prompt_tokens, max_prompt_tokens, max_completion_tokens, "
            "max_usd, status, error) SELECT unnest($1), unnest($2), unnest($3), unnest($4), unnest($5), "
            "unnest($6), unnest($7), unnest($8), unnest($9::INTEGER[]), unnest($10)::JSON, unnest($11::VARCHAR[]), "
            "to_timestamp(unnest($12::DOUBLE[]))::TIMESTAMP, unnest($13::BIGINT[]), unnest($14::BIGINT[]), "
            "unnest($15::BIGINT[]), unnest($16::DOUBLE[]), unnest($17), unnest($18::VARCHAR[])" + conflict,
            _columns(rows.sent.values()))
    if rows.changed:
        con.execute("UPDATE llm_calls SET status = c.status, attempts = c.att, error = c.err FROM (SELECT "
                    "unnest($1) AS call_id, unnest($2) AS status, unnest($3::INTEGER[]) AS att, "
                    "unnest($4::VARCHAR[]) AS err) c WHERE llm_calls.call_id = c.call_id "
                    "AND llm_calls.status IN ('pending', 'retrying')", _columns(rows.changed.values()))
    if rows.cache:
        con.execute("INSERT INTO llm_cache SELECT unnest($1), unnest($2), unnest($3), unnest($4)::JSON, "
                    "unnest($5)::JSON, to_timestamp(unnest($6::DOUBLE[]))::TIMESTAMP ON CONFLICT DO NOTHING",
                    _columns(rows.cache))
    if rows.final:
        finish = (
            "UPDATE llm_calls SET status = f.status, prompt_tokens = f.p, cached_tokens = f.ca, "
            "completion_tokens = f.co, reasoning_tokens = f.r, usd = f.usd, latency_s = f.lat, attempts = f.att, "
            "error = f.err, finished_at = to_timestamp(f.t)::TIMESTAMP FROM (SELECT unnest($1) AS call_id, "
            "unnest($2) AS status, unnest($3::BIGINT[]) AS p, unnest($4::BIGINT[]) AS ca, "
            "unnest($5::BIGINT[]) AS co, unnest($6::BIGINT[]) AS r, unnest($7::DOUBLE[]) AS usd, "
            "unnest($8::DOUBLE[]) AS lat, unnest($9::INTEGER[]) AS att, unnest($10::VARCHAR[]) AS err, "
            "unnest($11::DOUBLE[]) AS t) f WHERE llm_calls.call_id = f.call_id")
        columns = _columns(rows.final)
        done = -1
        if rows.since is not None:
            done = con.execute(finish + " AND llm_calls.created_at >= to_timestamp($12)::TIMESTAMP",
                               [*columns, rows.since]).fetchall()[0][0]
        if done < len(set(columns[0])):   # unbounded: idempotent for the rows the bounded one finished
            con.execute(finish, columns)
    if rows.hits:
        con.execute(
            "INSERT INTO llm_calls (call_id, key, backend, model, role, stage, stage_fp, price_version, "
            "served_rows, created_at, finished_at, status, usd, attempts) SELECT unnest($1), unnest($2), "
            "unnest($3), unnest($4), unnest($5), unnest($6), unnest($7), unnest($8), unnest($9)::JSON, "
            "to_timestamp(unnest($10::DOUBLE[]))::TIMESTAMP, to_timestamp(unnest($10::DOUBLE[]))::TIMESTAMP, "
            "'cache_hit', 0, 0" + conflict, _columns(rows.hits))
    if rows.failures:
        con.execute(
            "INSERT INTO llm_failures SELECT unnest($1), unnest($2), unnest($3), unnest($4), unnest($5), "
            "unnest($6), unnest($7), unnest($8), unnest($9), unnest($10::INTEGER[]), unnest($11::DOUBLE[]), "
            "unnest($12)::JSON, to_timestamp(unnest($13::DOUBLE[]))::TIMESTAMP ON CONFLICT DO NOTHING",
            _columns(rows.failures))


def recover(store: "Store", live_prefix: str) -> int:
    """Fold the journal's leftover segments into ``store`` and mark the calls they (and earlier crashes)
    left ``pending`` as ``interrupted``, in one transaction; returns how many calls were marked.

    Left alone: Batch API rows (``batch_id`` set: the next run picks their batch up) and rows whose
    call id starts with ``live_prefix`` (this process's own calls, possibly still in flight)."""
    directory = journal.journal_dir(store.path)
    paths = journal.segments(directory)
    rows = Rows(replay=True)
    for path in paths:
        for ev in journal.read(path):
            try:
                rows.add(ev)
            except (KeyError, TypeError, ValueError):
                continue              # a line this version cannot read: skipped, never fatal
    with store.transaction() as con:
        if not rows.empty:
            write(con, rows)
        marked = con.execute(
            "UPDATE llm_calls SET status = 'interrupted', error = ? WHERE status = 'pending' "
            "AND batch_id IS NULL AND NOT starts_with(call_id, ?)", [INTERRUPTED_ERROR, live_prefix]).fetchall()
        con.execute("UPDATE llm_calls SET status = 'failed', error = concat_ws('; ', error, ?) "
                    "WHERE status = 'retrying' AND NOT starts_with(call_id, ?)", [ABANDONED_ERROR, live_prefix])
    journal.discard(paths)
    return int(marked[0][0]) if marked else 0

