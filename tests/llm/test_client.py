"""LLMClient against the loopback server: results, cache keys, ledger rows and failures."""

from __future__ import annotations

import json

import pytest

from compiler.llm import ledger
from compiler.llm.backend import make_backend
from compiler.llm.openai_backend import OpenAIBackend
from compiler.llm.prices import shipped_table
from compiler.llm.types import LLMRequest
from compiler.recipe.schema import ModelConfig
from tests.llm.conftest import chat_requests
from tests.loopback import Faults, default_answer


def _rows(store, sql, *params):
    return store.con.execute(sql, list(params)).fetchall()


def test_results_come_back_in_request_order_with_ledger_rows(loopback_server, make_client, store):
    client = make_client(loopback_server)
    reqs = chat_requests(40)
    results = client.generate(reqs, stage="teach", stage_fp="fp-teach")
    expected = [default_answer(OpenAIBackend(client.config).body(r)) for r in reqs]
    assert [r.text for r in results] == expected
    assert all(r.ok and r.status == "ok" and r.usd > 0 for r in results)
    assert client.calls_sent == 40 and client.cache_hits == 0
    rows = _rows(store, "SELECT status, role, stage, stage_fp, served_rows, price_version FROM llm_calls "
                        "ORDER BY served_rows::VARCHAR")
    assert len(rows) == 40 and {r[:4] for r in rows} == {("ok", "teacher", "teach", "fp-teach")}
    assert {json.loads(r[4])[0] for r in rows} == {f"task-row{i}" for i in range(40)}
    assert {r[5] for r in rows} == {shipped_table().version}


def test_prompt_requests_use_the_completions_endpoint(loopback_server, make_client):
    client = make_client(loopback_server)
    [res] = client.generate([LLMRequest(prompt="def add(a, b):", max_tokens=3)], stage="s", stage_fp="f")
    assert res.ok and res.finish_reason == "length" and res.usage.completion_tokens == 3


def test_a_rerun_is_all_cache_hits_at_zero_dollars(loopback_server, make_client, store):
    client = make_client(loopback_server)
    first = client.generate(chat_requests(30), stage="s", stage_fp="f")
    again = client.generate(chat_requests(30), stage="s", stage_fp="f")
    assert [r.text for r in again] == [r.text for r in first]
    assert all(r.status == "cache_hit" and r.usd == 0 for r in again)
    assert loopback_server.tally.answered == 30 and client.calls_sent == 30 and client.cache_hits == 30
    assert _rows(store, "SELECT count(*), sum(usd) FROM llm_calls WHERE status = 'cache_hit'") == [(30, 0.0)]


def test_k_samples_of_one_prompt_are_k_cache_entries_and_temperature_misses(loopback_server, make_client, store):
    client = make_client(loopback_server)
    msgs = [{"role": "user", "content": "same prompt"}]
    samples = [LLMRequest.chat(msgs, temperature=0.8, sample_index=k) for k in range(5)]
    client.generate(samples, stage="s", stage_fp="f")
    assert _rows(store, "SELECT count(*) FROM llm_cache") == [(5,)]
    client.generate([LLMRequest.chat(msgs, temperature=0.8, sample_index=0)], stage="s", stage_fp="f")
    assert loopback_server.tally.answered == 5
    client.generate([LLMRequest.chat(msgs, temperature=0.7, sample_index=0)], stage="s", stage_fp="f")
    assert loopback_server.tally.answered == 6 and _rows(store, "SELECT count(*) FROM llm_cache") == [(6,)]


def test_identical_requests_in_one_call_are_sent_once(loopback_server, make_client, store):
    client = make_client(loopback_server)
    req = LLMRequest.chat([{"role": "user", "content": "twice"}])
    a, b = client.generate([req, req], stage="s", stage_fp="f")
    assert a.text == b.text and {a.status, b.status} == {"ok", "cache_hit"}
    assert loopback_server.tally.answered == 1 and client.calls_sent == 1


@pytest.mark.parametrize("loopback_server", [{"faults": Faults(
    rate_429=0.05, rate_429_retry_after=0.05, retry_after_s=0.05, rate_500=0.05, rate_timeout=0.02,
    rate_drop=0.01, hang_s=30), "cached_fraction": 0.3, "reasoning_tokens": 2, "seed": 7}], indirect=True)
def test_faults_leave_every_row_present_or_explicitly_failed_and_costs_match_the_server(
        loopback_server, make_client, store):
    client = make_client(loopback_server, timeout_s=1.5, max_retries=6, max_concurrency=32)
    results = client.generate(chat_requests(400), stage="s", stage_fp="f")
    assert len(results) == 400
    assert all((r.ok and r.text) or (not r.ok and r.text is None and r.error) for r in results)
    failed = [r for r in results if not r.ok]
    assert _rows(store, "SELECT count(*) FROM llm_failures") == [(len(failed),)]
    faults = loopback_server.tally.statuses
    assert faults["429"] and faults["429ra"] and faults["500"] and faults["hang"]
    assert _rows(store, "SELECT count(*) FROM llm_calls WHERE status = 'retried'")[0][0] > 0
    assert ledger.interrupted(store.con) == 0
    t = loopback_server.tally
    price = shipped_table().models["gpt-4o-mini"]
    server_usd = ((t.prompt_tokens - t.cached_tokens) * price.input + t.cached_tokens * price.cached_input
                  + t.completion_tokens * price.output) / 1e6
    totals = ledger.totals(store.con)[0]
    assert round(totals["usd"], 2) == round(server_usd, 2) and totals["usd"] == pytest.approx(server_usd)
    assert (totals["prompt_tokens"], totals["cached_tokens"], totals["completion_tokens"]) == \
        (t.prompt_tokens, t.cached_tokens, t.completion_tokens)
    assert totals["reasoning_tokens"] == t.reasoning_tokens > 0


@pytest.mark.parametrize("loopback_server", [{"faults": Faults(rate_500=1.0)}], indirect=True)
def test_a_request_out_of_retries_is_a_failure_row_with_reason_and_attempts(loopback_server, make_client, store):
    client = make_client(loopback_server, max_retries=2)
    [res] = client.generate(chat_requests(1), stage="s", stage_fp="f")
    assert not res.ok and res.text is None and res.attempts == 3 and res.error.startswith("http_500")
    assert _rows(store, "SELECT reason, attempts, usd, served_rows FROM llm_failures") == \
        [("http_500", 3, 0.0, '["task-row0"]')]
    assert _rows(store, "SELECT status, attempts FROM llm_calls") == [("failed", 3)]


@pytest.mark.parametrize("loopback_server", [{"faults": Faults(rate_400=1.0)}], indirect=True)
def test_a_bad_request_fails_at_once_without_retries(loopback_server, make_client, store):
    client = make_client(loopback_server, max_retries=5)
    [res] = client.generate(chat_requests(1), stage="s", stage_fp="f")
    assert not res.ok and res.attempts == 1 and res.error.startswith("http_400")
    assert loopback_server.tally.requests == 1


def test_no_store_still_generates(loopback_server, make_client, store):
    client = make_client(loopback_server, use_store=False)
    assert all(r.ok for r in client.generate(chat_requests(5), stage="s", stage_fp="f"))
    assert _rows(store, "SELECT count(*) FROM llm_calls") == [(0,)]


def test_make_backend_dispatches_on_the_backend_name():
    backend = make_backend(ModelConfig(model="m", backend="openai", base_url="http://127.0.0.1:9/v1"))
    assert isinstance(backend, OpenAIBackend) and backend.concurrent and backend.kind == "openai"


def test_openai_itself_needs_its_key_at_construction(monkeypatch):
    from compiler.errors import BackendError
    monkeypatch.delenv("MY_KEY", raising=False)
    with pytest.raises(BackendError, match=r"\$MY_KEY"):
        make_backend(ModelConfig(model="gpt-4o", backend="openai", api_key_env="MY_KEY"))


def test_retry_after_reads_seconds_milliseconds_and_http_dates():
    import email.utils
    import time

    from compiler.llm.openai_backend import retry_after
    assert retry_after({"retry-after": "2.5"}) == 2.5
    assert retry_after({"retry-after-ms": "300", "retry-after": "9"}) == 0.3
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= retry_after({"retry-after": later}) <= 31
    assert retry_after({}) is None
