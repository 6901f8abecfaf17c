"""The journal beside the store: what a dead process left there is folded in at the next open (read-write
or read-only), a torn last line is ignored, folding twice changes nothing, and unfinished calls are
settled: in flight -> ``interrupted`` with their bound, waiting to retry -> ``failed``."""

from __future__ import annotations

import shutil

import pytest

from compiler.llm import ledger
from compiler.llm.prices import Price
from compiler.llm.recorder import CallContext, Job, Recorder, request_size
from compiler.llm.types import Completion, LLMRequest, Usage
from compiler.store import journal
from compiler.store.db import Store, migrations
from tests.old_stores import store_at_migration
from tests.llm.conftest import chat_requests

PRICE = Price(input=2.0, output=8.0)


def _dead_process_journal(path) -> list[LLMRequest]:
    """Journal what a process that then died would have: two answers (one serving a duplicate), one
    call in flight, one waiting to retry; nothing of it committed. Returns the requests."""
    reqs = chat_requests(4) + [chat_requests(1)[0]]
    ctx = CallContext("openai", "m", None, "teacher", "teach", "fp", PRICE, "v1")
    with Store.open(path) as store:
        rec = Recorder(store, ctx, reqs)
        jobs = [Job(r, f"key{i}", [i], key_json=f'{{"k":{i}}}', call_id=f"dead{i:04d}") for i, r in enumerate(reqs[:4])]
        jobs[0].indices.append(4)
        for job in jobs:
            job.attempts = 1
            rec.sent(job)
        for job in jobs[:2]:
            rec.complete(job, Completion(f"answer {job.key}", "stop", Usage(10, 20)), 0.05)
        rec.retrying(jobs[3], "http_500", "server error")
        segment = rec.take().segment                  # sealed, never committed: the process "died" here
    with open(segment, "ab") as f:
        f.write(b'{"ev":"ok","id":"dead0002","key":"key2","usage":[1,')   # torn by the kill
    return reqs


def _state(con):
    return (con.execute("SELECT call_id, status, prompt_tokens, completion_tokens, max_completion_tokens "
                        "FROM llm_calls ORDER BY call_id").fetchall(),
            con.execute("SELECT key, response->>'text' FROM llm_cache ORDER BY key").fetchall())


def test_a_writable_open_folds_the_journal_and_settles_unfinished_calls(tmp_path):
    path = tmp_path / "s.duckdb"
    reqs = _dead_process_journal(path)
    [segment] = journal.segments(journal.journal_dir(path))
    kept = tmp_path / "segment.copy"
    shutil.copy(segment, kept)
    with Store.open(path) as store:
        calls, cache = _state(store.con)
        assert cache == [("key0", "answer key0"), ("key1", "answer key1")]
        statuses = {c[0]: c[1] for c in calls if c[0].startswith("dead")}
        assert statuses == {"dead0000": "ok", "dead0001": "ok", "dead0002": "interrupted", "dead0003": "failed"}
        assert [c[1] for c in calls if not c[0].startswith("dead")] == ["cache_hit"]     # the duplicate
        found = ledger.interrupted_calls(store.con)
        [row] = found["rows"]
        est, most, max_completion, usd = request_size(reqs[2], PRICE, batch=False)
        assert (row["call_id"], row["est_prompt_tokens"], row["max_prompt_tokens"], row["max_completion_tokens"]) == \
            ("dead0002", est, most, max_completion)
        assert row["max_usd"] == pytest.approx((most * 2.0 + max_completion * 8.0) / 1e6)
        assert "process ended before the next attempt" in store.con.execute(
            "SELECT error FROM llm_calls WHERE call_id = 'dead0003'").fetchone()[0]
        before = _state(store.con)
    assert not journal.journal_dir(path).exists()        # folded, then tidied away

    journal.journal_dir(path).mkdir()
    shutil.copy(kept, segment)                            # a kill between commit and deletion: folded again
    with Store.open(path) as store:
        assert _state(store.con) == before


def test_a_read_only_open_folds_the_journal_first(tmp_path):
    path = tmp_path / "s.duckdb"
    _dead_process_journal(path)
    with Store.open_readonly(path) as store:
        assert store.con.execute("SELECT count(*) FROM llm_cache").fetchone()[0] == 2
        assert ledger.interrupted(store.con) == 1
        assert ledger.totals(store.con)[0]["completion_tokens"] == 40
    assert journal.segments(journal.journal_dir(path)) == []


def test_a_store_from_before_the_journal_reads_its_pending_rows_as_interrupted(tmp_path):
    path = tmp_path / "old.duckdb"
    con = store_at_migration(path, 3)
    con.execute("INSERT INTO llm_calls (call_id, key, backend, model, status, created_at) VALUES "
                "('old1', 'k', 'openai', 'm', 'pending', now())")
    con.close()
    with Store.open(path) as store:
        assert store.schema_version() == len(migrations()) > 3
        assert store.con.execute("SELECT status FROM llm_calls").fetchall() == [("interrupted",)]
        found = ledger.interrupted_calls(store.con)
        assert (found["calls"], found["unbounded"], ledger.totals(store.con)[0]["interrupted"]) == (1, 1, 1)


def test_a_retry_journaled_after_its_first_attempt_was_committed_settles_by_call_id(tmp_path):
    path = tmp_path / "s.duckdb"
    ctx = CallContext("openai", "m", None, "teacher", "teach", "fp", PRICE, "v1")
    reqs = chat_requests(2)
    with Store.open(path) as store:
        rec = Recorder(store, ctx, reqs)
        jobs = [Job(r, f"key{i}", [i], call_id=f"dead{i:04d}", attempts=1) for i, r in enumerate(reqs)]
        for job in jobs:
            rec.sent(job)
        rec.flush()                                   # both committed as in flight
        assert [r[0] for r in store.con.execute("SELECT status FROM llm_calls").fetchall()] == ["pending"] * 2
        for job in jobs:
            rec.retrying(job, "http_500", "server error")
        jobs[1].attempts = 2
        rec.sent(jobs[1])                             # the second one went out again; then the process died
        rec.take()
    with Store.open(path) as store:
        assert store.con.execute("SELECT call_id, status, attempts FROM llm_calls ORDER BY call_id").fetchall() == \
            [("dead0000", "failed", 1), ("dead0001", "interrupted", 2)]


def test_a_recorder_finishes_calls_created_before_it_started(tmp_path):
    """A live recorder's finishing UPDATE only looks at ledger rows created since it started (so it
    does not join every row of a large ledger); a call created earlier, such as a Batch API call an
    earlier run registered, is still finished, and so is one it created itself."""
    ctx = CallContext("openai", "m", None, "teacher", "teach", "fp", PRICE, "v1")
    reqs = chat_requests(3)
    with Store.open(tmp_path / "s.duckdb") as store:
        earlier = [Job(r, f"key{i}", [i], key_json=f'{{"k":{i}}}', call_id=f"old{i:04d}", attempts=1)
                   for i, r in enumerate(reqs[:2])]
        Recorder(store, ctx, reqs).register(earlier)
        store.con.execute("UPDATE llm_calls SET created_at = created_at - INTERVAL 1 DAY")   # an earlier run's
        rec = Recorder(store, ctx, reqs)
        own = Job(reqs[2], "key2", [2], key_json='{"k":2}', call_id="new0000", attempts=1)
        rec.sent(own)
        rec.flush()
        for job in [*earlier, own]:
            rec.complete(job, Completion(f"answer {job.key}", "stop", Usage(10, 20)), 0.05)
        rec.flush()
        assert store.con.execute("SELECT call_id, status, prompt_tokens, completion_tokens FROM llm_calls "
                                 "ORDER BY call_id").fetchall() == \
            [("new0000", "ok", 10, 20), ("old0000", "ok", 10, 20), ("old0001", "ok", 10, 20)]
