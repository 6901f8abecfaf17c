"""Estimates: ranges from sampled prompts and past completion lengths, priced like real calls."""

from __future__ import annotations

import pytest

from compiler.llm import ledger
from compiler.llm.estimate import estimate
from compiler.llm.prices import Price
from tests.llm.conftest import chat_requests

PRICE = Price(input=1.0, output=2.0)


def test_without_history_completions_range_from_nothing_to_max_tokens():
    est = estimate(PRICE, calls=100, sampled_prompt_tokens=[10, 20, 30], max_tokens=200)
    assert est.completion_tokens.low == 0 and est.completion_tokens.high == 200 * 100
    assert est.prompt_tokens.expected == 20 * 100
    assert est.usd.low < est.usd.expected < est.usd.high
    assert est.usd.expected == pytest.approx((2000 * 1.0 + 10000 * 2.0) / 1e6)


def test_past_calls_of_the_stage_narrow_the_completion_range(loopback_server, make_client, store):
    make_client(loopback_server).generate(chat_requests(30), stage="teach", stage_fp="f")
    past = ledger.length_stats(store.con, stage="teach")
    est = estimate(PRICE, calls=1000, sampled_prompt_tokens=[25] * 5, max_tokens=512, past=past, batch=True)
    assert est.completion_tokens.expected == pytest.approx(past["completion_tokens_mean"] * 1000)
    assert est.completion_tokens.high < 512 * 1000
    unbatched = estimate(PRICE, calls=1000, sampled_prompt_tokens=[25] * 5, max_tokens=512, past=past)
    assert est.usd.expected == pytest.approx(unbatched.usd.expected / 2)
    assert set(est.as_dict()) == {"calls", "prompt_tokens", "completion_tokens", "usd"}
