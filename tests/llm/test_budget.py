"""Budgets: stop admitting at the cap, record what was in flight, resume later without paying twice."""

from __future__ import annotations

import pytest

from compiler.errors import BudgetExceeded
from compiler.llm import ledger
from compiler.llm.budget import Budget
from compiler.recipe.schema import BudgetConfig, PriceConfig
from tests.llm.conftest import chat_requests

PRICES = PriceConfig(input=1000.0, output=1000.0)   # $0.001 a token: a loopback call costs ~2.5 cents


def test_budget_stops_new_calls_records_in_flight_ones_and_a_higher_budget_resumes(
        loopback_server, make_client, store):
    reqs = chat_requests(120)
    budget = Budget(total_usd=0.5)
    client = make_client(loopback_server, budget=budget, prices=PRICES, max_concurrency=4)
    with pytest.raises(BudgetExceeded, match=r"budget \$0\.50 reached.*requests not sent") as err:
        client.generate(reqs, stage="teach", stage_fp="fp1")
    assert err.value.exit_code == 3 and "\n" not in str(err.value)
    paid = loopback_server.tally.answered
    assert 0 < paid < 120
    assert ledger.interrupted(store.con) == 0   # in-flight calls finished and were recorded
    spent = ledger.total_usd(store.con)
    assert 0.5 <= spent < 0.5 + 5 * 0.03          # at most the in-flight calls past the cap
    assert store.con.execute("SELECT count(*) FROM llm_calls WHERE status = 'ok'").fetchone()[0] == paid

    later = Budget(total_usd=100.0)              # a later compile, same stages, a higher budget
    client2 = make_client(loopback_server, budget=later, prices=PRICES, max_concurrency=4)
    results = client2.generate(reqs, stage="teach", stage_fp="fp1")
    assert all(r.ok for r in results)
    assert loopback_server.tally.answered == 120  # no paid call repeated
    assert client2.cache_hits == paid and later.spent_total == pytest.approx(ledger.total_usd(store.con))


def test_per_stage_caps_apply_to_their_stage_only(loopback_server, make_client):
    budget = Budget.from_config(BudgetConfig(stages={"judge": 0.1}))
    client = make_client(loopback_server, budget=budget, prices=PRICES, max_concurrency=2)
    assert all(r.ok for r in client.generate(chat_requests(10, prefix="a"), stage="teach", stage_fp="f1"))
    with pytest.raises(BudgetExceeded, match="stage 'judge'"):
        client.generate(chat_requests(40, prefix="b"), stage="judge", stage_fp="f2")
    assert budget.spent_by_stage["judge"] >= 0.1 and budget.spent_by_stage["teach"] > 0


def test_command_line_budget_replaces_the_recipe_total():
    b = Budget.from_config(BudgetConfig(usd=5.0, stages={"x": 1.0}), override_usd=2.0)
    assert (b.total_usd, b.per_stage) == (2.0, {"x": 1.0})
    b.charge("x", 1.0)
    assert not b.admits("x") and b.admits("y")
    b.charge("y", 1.0)
    assert not b.admits("y")
