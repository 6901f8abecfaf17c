"""``distillc plan --estimate``: calls, tokens and dollars per stage as low / expected / high, before
anything is paid for.

- Row counts flow from the task table through the stages: an LLM stage that fans out multiplies
  them by its ``n``; other stages scale them by the ratio rows_out/rows_in seen for the same stage in
  past runs in this store (low: the smallest ratio seen, expected: the median, high: the largest;
  with no history low 0, expected and high 1).
- Calls: the rows reaching the stage times its samples per row (a stage can say otherwise with a
  ``estimate_calls(params, rows)`` classmethod, e.g. PERsD's refinement only for failed attempts).
- Prompt tokens: sampled from the stage's real prompts on the first tasks when the stage can build
  them from task rows (``sample_requests(params, rows)``), else from past calls of the stage in the
  ledger; completion tokens from past calls (p10 / mean / p90) or the request's ``max_tokens``.
- Stages already cached cost nothing.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import polars as pl

from compiler.llm import ledger
from compiler.llm.estimate import Range, estimate
from compiler.llm.prices import resolve_price
from compiler.plan import Plan, Step
from compiler.store.db import Store

SAMPLE_TASKS = 20
CHARS_PER_TOKEN = 4.0   # rough size of a token in English prose and code


def _tokens(req: Any) -> int:
    text = req.prompt if req.prompt is not None else "".join(c for _, c in req.messages or ())
    return max(1, round(len(text) / CHARS_PER_TOKEN) + 4 * len(req.messages or ()))


def _history(store: Store | None) -> dict[str, list[float]]:
    if store is None:
        return {}
    ratios: dict[str, list[float]] = {}
    for uses, rin, rout in store.con.execute(
            "SELECT uses, rows_in, rows_out FROM stage_outputs WHERE rows_in > 0").fetchall():
        ratios.setdefault(uses, []).append(rout / rin)
    return ratios


def _scale(rows: Range, ratios: list[float] | None) -> Range:
    if not ratios:
        return Range(0.0, rows.expected, rows.high)
    return Range(rows.low * min(ratios), rows.expected * statistics.median(ratios), rows.high * max(ratios))


def _calls(step: Step, rows: Range) -> Range:
    custom = getattr(step.cls, "estimate_calls", None)
    if custom is not None:
        return custom(step.params, rows)
    n = getattr(step.params, "n", 1)
    return Range(rows.low * n, rows.expected * n, rows.high * n)


def _stage_estimate(step: Step, plan: Plan, calls: Range, tasks: pl.DataFrame, store: Store | None) -> dict[str, Any]:
    config = plan.loaded.recipe.model_for(step.roles[0])
    price, _ = resolve_price(config)
    sampler = getattr(step.cls, "sample_requests", None)
    sampled = [_tokens(r) for r in sampler(step.params, tasks.head(SAMPLE_TASKS))] if sampler else []
    past = ledger.length_stats(store.con, stage=step.name, model=config.model) if store else None
    if not sampled and past and past.get("n"):
        sampled = [round(past["prompt_tokens_p10"]), round(past["prompt_tokens_mean"]), round(past["prompt_tokens_p90"])]
    max_tokens = getattr(step.params, "max_tokens", 1024)
    batch = bool(config.batch)
    ests = {k: estimate(price, calls=round(getattr(calls, k)), sampled_prompt_tokens=sampled, max_tokens=max_tokens,
                        past=past, batch=batch) for k in ("low", "expected", "high")}
    return {
        "calls": {k: round(getattr(calls, k)) for k in ("low", "expected", "high")},
        "prompt_tokens": {k: round(getattr(ests[k].prompt_tokens, k)) for k in ests},
        "completion_tokens": {k: round(getattr(ests[k].completion_tokens, k)) for k in ests},
        "usd": {k: getattr(ests[k].usd, k) for k in ests},
        "prompt_source": "sampled prompts" if sampler else ("ledger" if sampled else "unknown"),
        "completion_source": "ledger" if past and past.get("n") else "max_tokens",
    }


def estimate_plan(plan: Plan, store_path: str) -> dict[str, Any]:
    from compiler.stages.sources import load_sources
    from compiler.store.outputs import cached_fingerprints, load_output

    store = Store.open_readonly(store_path) if Path(store_path).exists() else None
    try:
        done = cached_fingerprints(store, [s.fingerprint for s in plan.steps]) if store else set()
        first = plan.steps[0].fingerprint
        tasks = load_output(store, first) if first in done else load_sources(plan.loaded.recipe, plan.loaded.base_dir)
        history = _history(store)
        n = float(tasks.height)
        rows, stages, totals = Range(n, n, n), [], {"low": 0.0, "expected": 0.0, "high": 0.0}
        for step in plan.steps[1:]:
            entry: dict[str, Any] = {"name": step.name, "cached": step.fingerprint in done,
                                     "rows_in": {"low": round(rows.low), "expected": round(rows.expected),
                                                 "high": round(rows.high)}}
            if step.roles:
                calls = _calls(step, rows)
                if entry["cached"]:
                    entry.update(calls={"low": 0, "expected": 0, "high": 0}, usd={"low": 0.0, "expected": 0.0, "high": 0.0})
                else:
                    entry.update(_stage_estimate(step, plan, calls, tasks, store))
                for k in totals:
                    totals[k] += entry["usd"][k]
                n_fan = getattr(step.params, "n", 1)
                rows = Range(rows.low * n_fan, rows.expected * n_fan, rows.high * n_fan) \
                    if step.uses not in history else _scale(rows, history[step.uses])
            else:
                rows = _scale(rows, history.get(step.uses))
            stages.append(entry)
        return {"tasks": tasks.height, "stages": stages, "usd": totals}
    finally:
        if store is not None:
            store.close()
