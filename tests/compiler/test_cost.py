"""distillc cost: totals equal the ledger and the server's own usage tally; per-example costs add up
to the total, with discarded siblings and fruitless tasks paid for by the kept examples."""

from __future__ import annotations

from collections import Counter

import pytest

from compiler.llm.prices import shipped_table
from tests.compiler.conftest import STAND, STARTER, reference_answerer, run_cli, starter_tasks
from tests.loopback import LoopbackServer


def flaky_teacher(tasks, *, hopeless: set[str]):
    """The first answer to each task is right, the second wrong; hopeless tasks are always wrong."""
    right = reference_answerer(tasks)
    seen: Counter = Counter()
    by_instruction = {t["instruction"]: t["task_id"] for t in tasks}

    def answer(body):
        text = body["messages"][-1]["content"]
        task = next((tid for ins, tid in by_instruction.items() if text.startswith(ins)), None)
        seen[text] += 1
        if task in hopeless or seen[text] > 1:
            return "```python\ndef nothing():\n    return None\n```"
        return right(body)
    return answer


@pytest.fixture
def priced_run(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    tasks = starter_tasks(5)
    hopeless = {tasks[0]["task_id"]}
    with LoopbackServer(answer=flaky_teacher(tasks, hopeless=hopeless), cached_fraction=0.25) as server:
        recipe = tmp_path / "r.yaml"
        recipe.write_text(STAND.format(name="priced", tasks=STARTER, limit=5, url=server.url, n=2,
                                       temperature=0.5, max_per_task=2))
        store = tmp_path / "s.duckdb"
        r = run_cli("compile", recipe, "--store", store, "--json")
        assert r.code == 0, r.err
        yield store, server.tally, r.json(), hopeless


def cost(store, *args):
    r = run_cli("cost", "priced", "--store", store, "--json", *args)
    assert r.code == 0, r.err
    return r.json()


def test_total_equals_server_tally_to_the_cent(priced_run):
    store, tally, compiled, _ = priced_run
    price = shipped_table().lookup("gpt-4o-mini")
    expected = ((tally.prompt_tokens - tally.cached_tokens) * price.input
                + tally.cached_tokens * price.cached_input + tally.completion_tokens * price.output) / 1e6
    out = cost(store)
    assert tally.cached_tokens > 0
    assert round(out["usd"], 2) == round(expected, 2)
    assert out["usd"] == pytest.approx(expected, rel=1e-9)
    assert out["total"]["calls"] == tally.answered == compiled["llm_calls"] == 10
    assert out["usd"] == pytest.approx(compiled["usd"], abs=1e-6)


def test_groups_add_up(priced_run):
    store = priced_run[0]
    total = cost(store)["usd"]
    for by in ("stage", "model"):
        groups = cost(store, "--by", by)["groups"]
        assert sum(g["usd"] for g in groups) == pytest.approx(total)
    assert [g["stage"] for g in cost(store, "--by", "stage")["groups"]] == ["teacher_answer"]


def test_per_example_conserves_and_charges_discarded_siblings(priced_run):
    store, _, compiled, hopeless = priced_run
    out = cost(store, "--by", "example")
    examples = out["examples"]
    assert len(examples) == compiled["rows"] == 4          # one right answer for each task but the hopeless one
    assert sum(e["usd"] for e in examples) == pytest.approx(out["usd"], rel=1e-9)
    assert all(e["task_id"] not in hopeless for e in examples)
    for e in examples:
        assert e["ancestors_usd"] > 0 and e["siblings_usd"] > 0   # its own answer, and the wrong second one
        assert e["unattributed_usd"] > 0                          # the hopeless task's two answers
        assert e["usd"] == pytest.approx(e["ancestors_usd"] + e["siblings_usd"] + e["unattributed_usd"])
    human = run_cli("cost", "priced", "--store", store, "--by", "example")
    assert human.code == 0 and "per kept example" in human.out


def _same_costs(store_path, ref):
    """The SQL per-example costs equal the Python lineage walk's, example by example."""
    from compiler.cost import per_example, per_example_walk
    from compiler.store.db import Store
    from compiler.store.versions import resolve

    with Store.open_readonly(str(store_path)) as st:
        v = resolve(st, ref)
        fast, walk = per_example(st, v, explain=3), per_example_walk(st, v)
    assert [e["row_id"] for e in fast["examples"]] == [e["row_id"] for e in walk["examples"]]
    for a, b in zip(fast["examples"], walk["examples"]):
        assert (a["task_id"], a["variant"]) == (b["task_id"], b["variant"])
        for key in ("usd", "ancestors_usd", "siblings_usd", "unattributed_usd"):
            assert a[key] == pytest.approx(b[key], rel=1e-12, abs=1e-18), (a["row_id"], key)
    assert fast["total_usd"] == pytest.approx(walk["total_usd"], rel=1e-12)
    assert fast["unattributed_usd"] == pytest.approx(walk["unattributed_usd"], rel=1e-12, abs=1e-18)
    explained = [e for e in fast["examples"] if "lineage" in e]
    assert len(explained) == min(3, len(fast["examples"]))
    for e in explained:
        paid = sum(g["usd"] for g in e["lineage"])
        assert paid + e["unattributed_usd"] == pytest.approx(e["usd"], rel=1e-9)
    return fast, walk


def test_sql_per_example_equals_the_lineage_walk(priced_run):
    store, _, _, hopeless = priced_run
    fast, _ = _same_costs(store, "priced")
    assert any(e["siblings_usd"] > 0 for e in fast["examples"]) and fast["examples"][0]["unattributed_usd"] > 0
