"""``distillc plan --estimate``: calls, tokens and dollars per stage as low / expected / high, before
anything is paid for, for any method.

Each stage's requests per role come from the best source there is, named in ``basis``:

- ``exact``: the stage's input is known (the task table, or a stored output of its parent) and the
  stage can count what it would send (``expected_requests``): e.g. ``synthesize_tests`` asks
  nothing for tasks that bring their tests, ``teacher_refine`` asks only for failed attempts;
- ``history (same parent)``: this store ran the same stage on the same parent before: its rows and
  its distinct requests per role, per input row;
- ``history``: this store ran the stage elsewhere: the smallest / median / largest of those ratios;
- ``prior``: nothing recorded: the stage's stated priors (``prior_requests``).

Rows flow through the stages the same way: a parent's stored output is its exact row count; other
stages scale the rows by their rows_out/rows_in ratio from history, else by their fan-out. Prompt
tokens come from the ledger's past calls of the stage with the same model (the model's own token
counts) when there are any, else from the stage's own prompts sampled on the first tasks
(``sample_requests``, about 4 characters a token); completion tokens from the ledger (p10 / mean /
p90) or the request's ``max_tokens``. Each role's calls are priced at that role's model. Stages
already stored cost nothing.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import polars as pl

from compiler.llm import ledger
from compiler.llm.estimate import Range, estimate
from compiler.llm.prices import resolve_price
from compiler.plan import Plan, Step
from compiler.store import outputs
from compiler.store.db import Store

SAMPLE_TASKS = 20
CHARS_PER_TOKEN = 4.0   # rough size of a token in English prose and code
KEYS = ("low", "expected", "high")


def _tokens(req: Any) -> int:
    text = req.prompt if req.prompt is not None else "".join(c for _, c in req.messages or ())
    return max(1, round(len(text) / CHARS_PER_TOKEN) + 4 * len(req.messages or ()))


def _scaled(rows: Range, per_row: tuple[float, float, float]) -> Range:
    return Range(rows.low * per_row[0], rows.expected * per_row[1], rows.high * per_row[2])


def _spread(values: list[float]) -> tuple[float, float, float]:
    return min(values), statistics.median(values), max(values)


class History:
    """What this store recorded about past runs of each stage: rows in and out, and the distinct
    requests each role made, per stored output."""

    def __init__(self, store: Store | None):
        self.runs: dict[str, list[dict[str, Any]]] = {}
        if store is None:
            return
        calls: dict[str, dict[str, int]] = {}
        for fp, role, n in store.con.execute(
                "SELECT stage_fp, role, count(DISTINCT key) FROM llm_calls WHERE status NOT IN ('pending', 'interrupted') "
                "GROUP BY 1, 2").fetchall():
            calls.setdefault(fp, {})[role] = int(n)
        for fp, uses, parents, rin, rout in store.con.execute(
                "SELECT fingerprint, uses, parents, rows_in, rows_out FROM stage_outputs").fetchall():
            self.runs.setdefault(uses, []).append({"parents": json.loads(parents), "rows_in": rin,
                                                   "rows_out": rout, "calls": calls.get(fp, {})})

    def runs_of(self, step: Step) -> tuple[list[dict[str, Any]], str]:
        """Past runs of this stage on the same parent if any, else anywhere; and the basis name."""
        runs = [r for r in self.runs.get(step.uses, []) if r["rows_in"] > 0]
        same = [r for r in runs if r["parents"] == [step.parent]]
        return (same, "history (same parent)") if same else (runs, "history")

    def requests(self, step: Step) -> tuple[dict[str, tuple[float, float, float]], str] | None:
        runs, basis = self.runs_of(step)
        if not runs:
            return None
        ratios = {role: _spread([r["calls"].get(role, 0) / r["rows_in"] for r in runs]) for role in step.roles}
        return ratios, basis

    def rows_ratio(self, step: Step) -> tuple[float, float, float] | None:
        runs, _ = self.runs_of(step)
        return _spread([r["rows_out"] / r["rows_in"] for r in runs]) if runs else None


def _requests(step: Step, rows: Range, frame: pl.DataFrame | None, history: History) -> tuple[dict[str, Range], str]:
    fixed = step.cls.fixed_requests(step.params)
    if fixed is not None:
        return {role: Range(float(n), float(n), float(n)) for role, n in fixed.items()}, "exact"
    if frame is not None:
        exact = step.cls.expected_requests(step.params, frame)
        if exact is not None:
            return {role: Range(float(n), float(n), float(n)) for role, n in exact.items()}, "exact"
    past = history.requests(step)
    if past is not None:
        ratios, basis = past
        return {role: _scaled(rows, r) for role, r in ratios.items()}, basis
    return {role: _scaled(rows, r) for role, r in step.cls.prior_requests(step.params).items()}, "prior"


def _role_estimate(step: Step, plan: Plan, role: str, calls: Range, tasks: pl.DataFrame,
                   store: Store | None) -> dict[str, Any]:
    config = plan.loaded.recipe.model_for(role)
    price, _ = resolve_price(config)
    past = ledger.length_stats(store.con, stage=step.name, model=config.model) if store else None
    recorded = bool(past and past.get("n"))
    sampler = getattr(step.cls, "sample_requests", None) if role == step.roles[0] and not recorded else None
    if recorded:          # this model's own token counts for this stage beat a characters-per-token guess
        sampled = [round(past[f"prompt_tokens_{q}"]) for q in ("p10", "mean", "p90")]
    else:
        sampled = [_tokens(r) for r in sampler(step.params, tasks.head(SAMPLE_TASKS))] if sampler else []
    max_tokens = getattr(step.params, "max_tokens", 1024)
    ests = {k: estimate(price, calls=round(getattr(calls, k)), sampled_prompt_tokens=sampled,
                        max_tokens=max_tokens, past=past, batch=bool(config.batch)) for k in KEYS}
    return {
        "model": config.model,
        "calls": {k: round(getattr(calls, k)) for k in KEYS},
        "prompt_tokens": {k: round(getattr(ests[k].prompt_tokens, k)) for k in KEYS},
        "completion_tokens": {k: round(getattr(ests[k].completion_tokens, k)) for k in KEYS},
        "usd": {k: getattr(ests[k].usd, k) for k in KEYS},
        "prompt_source": "sampled prompts" if sampler else ("ledger" if sampled else "unknown"),
        "completion_source": "ledger" if past and past.get("n") else "max_tokens",
    }


def _summed(by_role: dict[str, dict[str, Any]], field: str) -> dict[str, float]:
    return {k: sum(r[field][k] for r in by_role.values()) for k in KEYS}


def _llm_entry(step: Step, plan: Plan, rows: Range, frame: pl.DataFrame | None, tasks: pl.DataFrame,
               store: Store | None, history: History) -> dict[str, Any]:
    calls, basis = _requests(step, rows, frame, history)
    by_role = {role: _role_estimate(step, plan, role, calls[role], tasks, store) for role in calls}
    main = by_role[step.roles[0]] if step.roles[0] in by_role else next(iter(by_role.values()))
    return {"basis": basis, "by_role": by_role, "calls": _summed(by_role, "calls"),
            "prompt_tokens": _summed(by_role, "prompt_tokens"),
            "completion_tokens": _summed(by_role, "completion_tokens"), "usd": _summed(by_role, "usd"),
            "prompt_source": main["prompt_source"], "completion_source": main["completion_source"]}


def _rows_after(step: Step, rows: Range, history: History) -> Range:
    stated = [step.cls.expected_rows(step.params, getattr(rows, k)) for k in KEYS]
    if None not in stated:
        return Range(*stated)
    ratio = history.rows_ratio(step)
    if ratio is not None:
        return _scaled(rows, ratio)
    if step.roles:                      # an LLM stage fans each row out into its samples
        n = float(getattr(step.params, "n", 1))
        return Range(rows.low * n, rows.expected * n, rows.high * n)
    return Range(0.0, rows.expected, rows.high)


def estimate_plan(plan: Plan, store_path: str) -> dict[str, Any]:
    from compiler.stages.sources import load_sources

    store = Store.open_readonly(store_path) if Path(store_path).exists() else None
    try:
        done = outputs.cached_fingerprints(store, [s.fingerprint for s in plan.steps]) if store else set()
        first = plan.steps[0].fingerprint
        tasks = outputs.load_output(store, first) if first in done else load_sources(plan.loaded.recipe,
                                                                                     plan.loaded.base_dir)
        history = History(store)
        n = float(tasks.height)
        rows, stages, totals = Range(n, n, n), [], {k: 0.0 for k in KEYS}
        for step in plan.steps[1:]:
            frame = _known_frame(step, first, tasks, done, store)
            if frame is not None:
                rows = Range(*(float(frame.height),) * 3)
            entry: dict[str, Any] = {"name": step.name, "cached": step.fingerprint in done,
                                     "rows_in": {k: round(getattr(rows, k)) for k in KEYS}}
            if step.roles:
                if entry["cached"]:
                    entry.update(basis="cached", calls={k: 0 for k in KEYS}, usd={k: 0.0 for k in KEYS})
                else:
                    entry.update(_llm_entry(step, plan, rows, frame, tasks, store, history))
                for k in KEYS:
                    totals[k] += entry["usd"][k]
            rows = _rows_after(step, rows, history)
            stages.append(entry)
        return {"tasks": tasks.height, "stages": stages, "usd": totals}
    finally:
        if store is not None:
            store.close()


def _known_frame(step: Step, first: str, tasks: pl.DataFrame, done: set[str], store: Store | None) -> pl.DataFrame | None:
    """The stage's input when it is known without running anything: the task table, or the stored
    output of its parent."""
    if step.parent == first:
        return tasks
    if store is not None and step.parent in done:
        return outputs.load_output(store, step.parent)
    return None
