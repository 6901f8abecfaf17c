"""Prices: table lookup, recipe overrides, local models at $0, and the dollars of one call."""

from __future__ import annotations

import pytest

from compiler.errors import BackendError
from compiler.llm.prices import Price, resolve_price, shipped_table
from compiler.llm.types import Usage
from compiler.recipe.schema import ModelConfig, PriceConfig


def test_shipped_table_is_versioned_and_dated():
    table = shipped_table()
    assert table.version and table.taken
    assert all(p.input > 0 and p.output > 0 for p in table.models.values())


def test_dated_snapshots_resolve_to_their_family_by_longest_prefix():
    table = shipped_table()
    assert table.lookup("gpt-4o-mini-2024-07-18") is table.models["gpt-4o-mini"]
    assert table.lookup("gpt-4o-2024-08-06") is table.models["gpt-4o"]
    assert table.lookup("openai/gpt-4.1-mini") is table.models["gpt-4.1-mini"]
    assert table.lookup("gpt-4o-minimal") is None


def test_cost_bills_cached_input_at_its_rate_and_applies_batch_discount():
    price = Price(input=2.0, output=8.0, cached_input=0.5, batch_discount=0.5)
    usage = Usage(prompt_tokens=1_000_000, cached_tokens=400_000, completion_tokens=500_000, reasoning_tokens=100_000)
    expected = 0.6 * 2.0 + 0.4 * 0.5 + 0.5 * 8.0   # reasoning tokens are inside completion_tokens
    assert price.cost(usage) == pytest.approx(expected)
    assert price.cost(usage, batch=True) == pytest.approx(expected / 2)
    assert Price(input=1.0, output=1.0).cost(Usage(prompt_tokens=10, cached_tokens=10)) == pytest.approx(1e-5)


def test_recipe_prices_override_the_table():
    config = ModelConfig(model="gpt-4o", backend="openai", prices=PriceConfig(input=1.0, output=2.0))
    price, version = resolve_price(config)
    assert (price.input, price.output, version) == (1.0, 2.0, "recipe")


def test_self_hosted_models_are_free_unless_priced():
    assert resolve_price(ModelConfig(model="Qwen/Qwen2.5-Coder-7B", backend="vllm"))[1] == "local"
    local = ModelConfig(model="my-finetune", backend="openai", base_url="http://127.0.0.1:8000/v1")
    price, version = resolve_price(local)
    assert version == "local" and price.cost(Usage(prompt_tokens=10**6, completion_tokens=10**6)) == 0


def test_unknown_model_on_openai_itself_is_an_error_not_a_free_bill():
    with pytest.raises(BackendError, match="no price for model"):
        resolve_price(ModelConfig(model="gpt-99-ultra", backend="openai"))
