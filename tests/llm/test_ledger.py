"""Ledger queries: totals that equal the rows, per-row cost shares, length statistics, failures."""

from __future__ import annotations

import pytest

from compiler.llm import ledger
from compiler.llm.types import LLMRequest
from compiler.store.db import migrations
from tests.llm.conftest import chat_requests
from tests.loopback import Faults


def test_store_migrates_to_the_llm_tables(store):
    assert store.schema_version() == len(migrations())
    assert store.table_exists("llm_failures") and store.table_exists("llm_batches")


def test_totals_by_stage_equal_the_sum_of_rows(loopback_server, make_client, store):
    client = make_client(loopback_server)
    client.generate(chat_requests(12, prefix="a"), stage="teach", stage_fp="f1")
    client.generate(chat_requests(5, prefix="b"), stage="judge", stage_fp="f2")
    client.generate(chat_requests(5, prefix="b"), stage="judge", stage_fp="f2")   # all hits
    by_stage = {r["stage"]: r for r in ledger.totals(store.con, by="stage")}
    assert (by_stage["teach"]["calls"], by_stage["judge"]["calls"], by_stage["judge"]["cache_hits"]) == (12, 5, 5)
    overall = ledger.totals(store.con)[0]
    assert overall["usd"] == pytest.approx(sum(r["usd"] for r in by_stage.values()))
    assert overall["usd"] == pytest.approx(sum(c["usd"] for c in ledger.calls(store.con)))
    assert ledger.total_usd(store.con, ["f2"]) == pytest.approx(by_stage["judge"]["usd"])
    [model] = ledger.totals(store.con, by="model")
    assert (model["model"], model["backend"]) == ("gpt-4o-mini", "openai")


def test_cost_by_row_splits_a_call_over_the_rows_it_served(loopback_server, make_client, store):
    client = make_client(loopback_server)
    [res] = client.generate([LLMRequest.chat([{"role": "user", "content": "x"}], served_rows=("r1", "r2"))],
                            stage="s", stage_fp="f")
    shares = ledger.cost_by_row(store.con)
    assert shares == pytest.approx({"r1": res.usd / 2, "r2": res.usd / 2})


def test_length_stats_describe_past_outputs_for_estimates(loopback_server, make_client, store):
    client = make_client(loopback_server)
    client.generate(chat_requests(20), stage="teach", stage_fp="f1")
    stats = ledger.length_stats(store.con, stage="teach")
    assert stats["n"] == 20
    assert stats["completion_tokens_p10"] <= stats["completion_tokens_p50"] <= stats["completion_tokens_p90"]
    assert stats["prompt_tokens_mean"] > 0 and ledger.length_stats(store.con, stage="nope")["n"] == 0


@pytest.mark.parametrize("loopback_server", [{"faults": Faults(rate_400=1.0)}], indirect=True)
def test_failures_are_listed_with_their_reasons(loopback_server, make_client, store):
    make_client(loopback_server).generate(chat_requests(3), stage="s", stage_fp="f")
    assert ledger.failure_reasons(store.con) == {"http_400": 3}
    assert {f["stage_fp"] for f in ledger.failures(store.con, ["f"])} == {"f"}
