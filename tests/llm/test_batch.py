"""Batch mode: Files + Batch API rounds, resubmission of failed items, batch prices, and no double
submission after a crash between creating a batch and recording its id."""

from __future__ import annotations

import pytest

from compiler.llm import ledger
from compiler.llm.batch import BatchRun
from compiler.llm.prices import shipped_table
from compiler.llm.types import LLMRequest
from tests.llm.conftest import chat_requests


def test_batch_mode_answers_everything_resubmits_failures_and_bills_at_the_batch_price(make_loopback, make_client,
                                                                                     store):
    server = make_loopback(batch_polls=2, batch_item_fail_rate=0.25, seed=5)
    client = make_client(server, batch=True, max_retries=5)
    reqs = chat_requests(40) + [LLMRequest(prompt=f"def f{i}(x):", max_tokens=5) for i in range(6)]
    results = client.generate(reqs, stage="teach", stage_fp="f")
    assert all(r.ok for r in results) and client.calls_sent == 46
    assert server.tally.answered == 0 and server.tally.batch_items == 46
    assert server.tally.batches_created > 2   # one per endpoint, then resubmissions
    assert store.con.execute("SELECT count(*) FROM llm_calls WHERE status = 'retried'").fetchone()[0] > 0
    price = shipped_table().models["gpt-4o-mini"]
    t = server.tally
    expected = (t.batch_prompt_tokens * price.input + t.batch_completion_tokens * price.output) / 1e6 * 0.5
    assert ledger.total_usd(store.con) == pytest.approx(expected)
    assert store.con.execute("SELECT DISTINCT status FROM llm_batches").fetchall() == [("done",)]

    again = client.generate(reqs, stage="teach", stage_fp="f")
    assert all(r.status == "cache_hit" for r in again) and server.tally.batches_created == t.batches_created


def test_batch_items_failing_every_round_become_failure_rows(make_loopback, make_client, store):
    server = make_loopback(batch_item_fail_rate=1.0)
    client = make_client(server, batch=True, max_retries=1)
    results = client.generate(chat_requests(3), stage="s", stage_fp="f")
    assert [r.ok for r in results] == [False] * 3 and server.tally.batches_created == 2
    assert ledger.failure_reasons(store.con) == {"server_error": 3}


def test_a_crash_after_creating_a_batch_never_submits_it_twice(make_loopback, make_client, store, monkeypatch):
    server = make_loopback()
    reqs = chat_requests(10)
    real_update = BatchRun._update_batch

    def die_on_remote_id(self, local_id, **fields):
        if "remote_id" in fields:
            raise KeyboardInterrupt("killed right after the provider created the batch")
        real_update(self, local_id, **fields)

    monkeypatch.setattr(BatchRun, "_update_batch", die_on_remote_id)
    with pytest.raises(KeyboardInterrupt):
        make_client(server, batch=True).generate(reqs, stage="s", stage_fp="f")
    monkeypatch.setattr(BatchRun, "_update_batch", real_update)
    assert server.tally.batches_created == 1 and ledger.interrupted(store.con) == 10

    results = make_client(server, batch=True).generate(reqs, stage="s", stage_fp="f")
    assert all(r.ok for r in results)
    assert server.tally.batches_created == 1 and server.tally.batch_items == 10
    assert ledger.interrupted(store.con) == 0


def test_a_crash_before_the_provider_saw_the_batch_submits_it_once(make_loopback, make_client, store, monkeypatch):
    server = make_loopback()
    real_submit_file = BatchRun._update_batch

    def die_after_upload(self, local_id, **fields):
        if "input_file_id" in fields:
            raise KeyboardInterrupt("killed after the upload")
        real_submit_file(self, local_id, **fields)

    monkeypatch.setattr(BatchRun, "_update_batch", die_after_upload)
    with pytest.raises(KeyboardInterrupt):
        make_client(server, batch=True).generate(chat_requests(4), stage="s", stage_fp="f")
    monkeypatch.setattr(BatchRun, "_update_batch", real_submit_file)
    results = make_client(server, batch=True).generate(chat_requests(4), stage="s", stage_fp="f")
    assert all(r.ok for r in results) and server.tally.batches_created == 1


def test_large_inputs_split_into_batches_of_at_most_max_items(make_loopback, make_client, monkeypatch):
    monkeypatch.setattr("compiler.llm.batch.MAX_ITEMS", 10)
    server = make_loopback(batch_polls=3)
    results = make_client(server, batch=True).generate(chat_requests(35), stage="s", stage_fp="f")
    assert all(r.ok for r in results) and server.tally.batches_created == 4 and server.tally.batch_items == 35
