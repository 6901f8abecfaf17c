"""distillc plan --estimate: calls, tokens and dollars per stage as low/expected/high, from sampled
prompts and past output lengths in the ledger; read-only."""

from __future__ import annotations

from tests.compiler.conftest import file_digest, run_cli


def estimate(recipe, store):
    r = run_cli("plan", recipe, "--store", store, "--estimate", "--json")
    assert r.code == 0, r.err
    return r.json()["estimate"]


def test_estimate_before_and_after_a_run(make_recipe, store):
    recipe = make_recipe(limit=6, n=2)
    before = estimate(recipe, store)
    assert not store.exists()
    stage = before["stages"][0]
    assert stage["name"] == "teacher_answer" and stage["calls"] == {"low": 12, "expected": 12, "high": 12}
    assert stage["prompt_source"] == "sampled prompts" and stage["completion_source"] == "max_tokens"
    usd = stage["usd"]
    assert 0 < usd["low"] < usd["expected"] < usd["high"]
    assert before["usd"] == usd

    compiled = run_cli("compile", recipe, "--store", store, "--json").json()
    digest = file_digest(store)
    cached = estimate(recipe, store)
    assert cached["stages"][0]["cached"] and cached["usd"]["high"] == 0
    # a hotter teacher is a new stage: its completions are now estimated from the ledger's history
    hotter = estimate(make_recipe(limit=6, n=2, temperature=0.9), store)
    again = hotter["stages"][0]
    assert not again["cached"] and again["completion_source"] == "ledger"
    assert again["usd"]["expected"] < usd["expected"]      # real answers are far shorter than max_tokens
    assert again["usd"]["high"] >= compiled["usd"] * 0.5
    assert file_digest(store) == digest


def test_estimate_human_output(make_recipe, store):
    r = run_cli("plan", make_recipe(limit=2, n=1), "--store", store, "--estimate")
    assert r.code == 0 and "low / expected / high" in r.out and "teacher_answer" in r.out
