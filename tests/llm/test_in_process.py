"""LLMClient over an in-process backend (transformers, the tiny random model): chunks, cache, $0 ledger."""

from __future__ import annotations

from compiler.llm import ledger
from compiler.llm.budget import Budget
from compiler.llm.client import LLMClient
from compiler.llm.types import LLMRequest
from compiler.recipe.schema import ModelConfig


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
