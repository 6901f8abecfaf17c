"""LLMClient over an in-process backend (transformers, the tiny random model): chunks, cache, $0 ledger,
and batches that raise."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from compiler.errors import BackendError, StageIncomplete
from compiler.llm import ledger
from compiler.llm.budget import Budget
from compiler.llm.client import LLMClient
from compiler.llm.types import LLMRequest
from compiler.recipe.schema import ModelConfig
from compiler.runner import StageContext
from compiler.store.db import Store
from evals import generate as gen
from evals import models


def test_in_process_backend_goes_through_cache_and_ledger_at_zero_cost(tiny_model_dir, store):
    config = ModelConfig(model=str(tiny_model_dir), backend="transformers", batch_size=2)
    reqs = [LLMRequest.chat([{"role": "user", "content": f"write f{i}"}], max_tokens=4, served_rows=(f"r{i}",))
            for i in range(5)]
    with LLMClient(config, store=store, role="student", budget=Budget(total_usd=0.01)) as client:
        first = client.generate(reqs, stage="attempt", stage_fp="fp")
        again = client.generate(reqs, stage="attempt", stage_fp="fp")
    assert all(r.ok and r.text is not None for r in first) and client.calls_sent == 5
    assert [r.text for r in again] == [r.text for r in first] and client.cache_hits == 5
    [row] = ledger.totals(store.con, by="model")
    assert (row["backend"], row["calls"], row["cache_hits"], row["usd"]) == ("transformers", 5, 5, 0)
    assert store.con.execute("SELECT DISTINCT price_version FROM llm_calls").fetchall() == [("local",)]


# -- a batch that raises (out of memory, say) is halved and retried; the model's own errors are not ------

def _requests(n: int) -> list[LLMRequest]:
    return [LLMRequest.chat([{"role": "user", "content": f"write f{i}"}], max_tokens=4, served_rows=(f"r{i}",))
            for i in range(n)]


@pytest.fixture
def clean_texts(tiny_model_dir, tmp_path):
    """The answers of a run where nothing raises."""
    config = ModelConfig(model=str(tiny_model_dir), backend="transformers", batch_size=2)
    with Store.open(tmp_path / "clean.duckdb") as clean, LLMClient(config, store=clean, role="student") as client:
        return [r.text for r in client.generate(_requests(6), stage="attempt", stage_fp="fp")]


def _flaky_generate(monkeypatch, raises):
    """Wrap the real generation; ``raises(inputs, call_number)`` decides when it runs out of memory."""
    real, sizes = gen.generate, []

    def generate(model, tokenizer, inputs, **kw):
        sizes.append(len(inputs))
        if raises(inputs, len(sizes)):
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB\n(details)")
        return real(model, tokenizer, inputs, **kw)
    monkeypatch.setattr(gen, "generate", generate)
    return sizes


def test_a_chunk_that_raises_once_is_halved_and_every_request_gets_its_answer(tiny_model_dir, store, clean_texts,
                                                                             monkeypatch):
    sizes = _flaky_generate(monkeypatch, lambda inputs, call: call == 1)
    config = ModelConfig(model=str(tiny_model_dir), backend="transformers", batch_size=2)
    with LLMClient(config, store=store, role="student") as client:
        results = client.generate(_requests(6), stage="attempt", stage_fp="fp")
    assert [r.text for r in results] == clean_texts and all(r.ok for r in results)
    assert sizes == [6, 3, 3]                      # the chunk, then its halves
    assert store.con.execute("SELECT DISTINCT status, attempts FROM llm_calls").fetchall() == [("retried", 2)]
    assert ledger.failure_reasons(store.con) == {}


def test_a_request_that_always_raises_fails_for_now_and_the_stage_is_not_saved(tiny_model_dir, store, clean_texts,
                                                                              monkeypatch):
    sizes = _flaky_generate(monkeypatch, lambda inputs, call: any("write f3" in str(i) for i in inputs))
    config = ModelConfig(model=str(tiny_model_dir), backend="transformers", batch_size=2)
    with LLMClient(config, store=store, role="student") as client:
        results = client.generate(_requests(6), stage="attempt", stage_fp="fp")
    assert [r.ok for r in results] == [True, True, True, False, True, True]
    assert [r.text for r in results if r.ok] == clean_texts[:3] + clean_texts[4:]
    bad = results[3]
    assert bad.transient and bad.error.startswith("generation_error: RuntimeError: CUDA out of memory")
    assert sizes == [6, 3, 3, 2, 1, 1, 1]          # halved down to the one request that keeps raising
    assert ledger.failure_reasons(store.con) == {"generation_error": 1}

    ctx = StageContext(SimpleNamespace(name="attempt"), services=None, tasks_fingerprint="t")
    ctx.requests, ctx.failures = len(results), [r for r in results if not r.ok]
    with pytest.raises(StageIncomplete, match="failed for now") as err:
        ctx.check_failures()
    assert err.value.exit_code == 4


def test_a_model_that_cannot_load_stops_at_once(tiny_model_dir, store, monkeypatch):
    calls = []

    def broken(*args, **kw):
        calls.append(1)
        raise models.ModelNotFound("cannot load model 'x': weights missing")
    monkeypatch.setattr(models, "load_model", broken)
    config = ModelConfig(model=str(tiny_model_dir), backend="transformers", batch_size=2)
    with LLMClient(config, store=store, role="student") as client:
        with pytest.raises(BackendError, match="weights missing"):
            client.generate(_requests(6), stage="attempt", stage_fp="fp")
    assert calls == [1]                            # not once per half or per request
    assert ledger.failure_reasons(store.con) == {}
