"""SODA's funnel for ``distillc show``, per cycle: the questions, the ones dropped and why, the pairs
kept and dropped by reason, the judge's score histogram, the tiers, the new questions per tier (and
those dropped), and the cost of each stage.

Cycle 1 is read from the recipe's own stages; later cycles from ``soda_cycles``: its output holds every
cycle's rows (each with its ``cycle``), its rejections carry ``cycle <k> <stage>:`` in their detail,
and the ledger labels its calls ``<soda_cycles>:cycle<k>:<stage>``.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from typing import Any

import polars as pl

from compiler.inspect import variant_counts
from compiler.store import outputs
from compiler.store.db import Store
from compiler.store.versions import Version

CYCLES, SEEDS, EMIT = "soda_cycles", "soda_seeds", "emit_soda"
_OWN_DROPS = {"pair": "pairs_dropped", "new_questions": "new_questions_dropped"}


def soda_funnel(store: Store, version: Version) -> dict[str, Any] | None:
    """SODA's counts per cycle for a version built with ``soda_seeds``; None for other recipes."""
    steps = version.stages
    at = next((i for i, s in enumerate(steps) if s["uses"] == SEEDS), None)
    if at is None:
        return None
    uses = {s["name"]: s["uses"] for s in steps}
    frame = _soda_frame(store, steps)
    drops = _drops(store, steps, at, uses)
    cost = _cost(store, version, steps, at)
    seeds = (outputs.output_info(store, steps[at]["fingerprint"]) or {}).get("rows_out") or 0
    last = int(frame["cycle"].max() or 1) if "cycle" in frame.columns and frame.height else 1
    cycles = [_cycle(k, frame, drops.get(k, {}), cost.get(k, {}), seeds) for k in range(1, last + 1)]
    return {"cycles": [c for c in cycles if c["questions"]], "kept": variant_counts(store, version)}


def _soda_frame(store: Store, steps: list[dict[str, Any]]) -> pl.DataFrame:
    """The rows before the records: the input of ``emit_soda``, else the last stage's output."""
    at = next((i for i, s in enumerate(steps) if s["uses"] == EMIT), len(steps))
    return outputs.load_output(store, steps[at - 1]["fingerprint"])


def _drops(store: Store, steps: list[dict[str, Any]], at: int, uses: dict[str, str]) -> dict[int, dict[str, Counter]]:
    """Per cycle, the drop counts by reason of pairs, of new questions and of questions."""
    found: dict[int, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    for step in steps[at + 1:]:
        if step["uses"] == CYCLES:
            rows = store.con.execute(
                "SELECT regexp_extract(detail, '^cycle (\\d+) ([^:]+):', ['k', 'name']) AS m, reason, count(*) "
                "FROM rejections WHERE fingerprint = ? GROUP BY 1, 2", [step["fingerprint"]]).fetchall()
            for m, reason, n in rows:
                kind = _OWN_DROPS.get(uses.get(m["name"], ""), "questions_dropped")
                found[int(m["k"] or 0)][kind][reason] += n
        elif step["uses"] != EMIT:
            kind = _OWN_DROPS.get(step["uses"], "questions_dropped")
            found[1][kind].update(outputs.rejection_counts(store, step["fingerprint"]))
    return found


def _cost(store: Store, version: Version, steps: list[dict[str, Any]], at: int) -> dict[int, dict[str, Any]]:
    """Per cycle, dollars and calls per stage (a call's ``:part`` counts for its stage)."""
    names = {s["name"] for s in steps[at + 1:] if s["uses"] not in (CYCLES, EMIT)}
    cycles = {s["name"] for s in steps if s["uses"] == CYCLES}
    rows = store.con.execute(
        "SELECT stage, count(*) FILTER (WHERE status NOT IN ('cache_hit', 'pending', 'interrupted')), "
        "coalesce(sum(usd), 0) FROM llm_calls WHERE list_contains(?, stage_fp) GROUP BY stage",
        [version.fingerprints]).fetchall()
    found: dict[int, dict[str, Any]] = defaultdict(lambda: defaultdict(lambda: {"calls": 0, "usd": 0.0}))
    for label, calls, usd in rows:
        parts = label.split(":")
        if parts[0] in cycles and len(parts) >= 3 and parts[1].startswith("cycle"):
            k, name = int(parts[1][5:]), parts[2]
        elif parts[0] in names:
            k, name = 1, parts[0]
        else:
            continue
        found[k][name]["calls"] += int(calls)
        found[k][name]["usd"] += float(usd)
    order = {s["name"]: i for i, s in enumerate(steps)}
    return {k: dict(sorted(v.items(), key=lambda kv: order.get(kv[0], len(order)))) for k, v in found.items()}


def _cycle(k: int, frame: pl.DataFrame, drops: dict[str, Counter], cost: dict[str, Any], seeds: int) -> dict[str, Any]:
    questions = _rows(frame, "question", k)
    made = _rows(frame, "new_question", k)
    asked = seeds if k == 1 else _rows(frame, "new_question", k - 1).height
    evidence = questions["tier_evidence"] if "tier_evidence" in questions.columns else []
    scores = [json.loads(e)["score"] for e in evidence]
    return {
        "cycle": k, "questions": asked, "questions_kept": questions.height,
        "questions_dropped": dict(drops.get("questions_dropped", {})),
        "pairs_kept": int(questions["pair_kept"].fill_null(False).sum()) if "pair_kept" in questions.columns else 0,
        "pairs_dropped": dict(drops.get("pairs_dropped", {})),
        "judge_scores": _histogram(scores),
        "judge_unparsed": drops.get("questions_dropped", {}).get("judge_unparsed", 0),
        "tiers": _counts(questions, "tier"),
        "new_questions": _counts(made, "origin_tier"),
        "new_questions_dropped": dict(drops.get("new_questions_dropped", {})),
        "cost": {name: dict(v) for name, v in cost.items()},
        "usd": sum(v["usd"] for v in cost.values()),
    }


def _rows(frame: pl.DataFrame, kind: str, k: int) -> pl.DataFrame:
    if "soda_kind" not in frame.columns:
        return frame.clear()
    return frame.filter((pl.col("soda_kind") == kind) & (pl.col("cycle") == k))


def _counts(frame: pl.DataFrame, column: str) -> dict[str, int]:
    if column not in frame.columns:
        return {}
    return {t: int((frame[column] == t).sum()) for t in ("easy", "medium", "hard")}


def _histogram(scores: list[float | None]) -> dict[str, int]:
    """Judge totals by whole point (4.5 counts under 4): keys "0" to "6"."""
    bins = Counter(str(math.floor(s)) for s in scores if s is not None)
    return {str(b): bins.get(str(b), 0) for b in range(7)}


def _reasons(counts: dict[str, int]) -> str:
    return ", ".join(f"{r}={n}" for r, n in sorted(counts.items(), key=lambda x: (-x[1], x[0]))) or "-"


def render_funnel(f: dict[str, Any]) -> list[str]:
    """A tier table with a row per cycle, then each cycle's drops, judge histogram and cost."""
    head = f"{'cycle':>5} {'questions':>9} {'dropped':>7} {'pairs':>5} {'easy':>4} {'medium':>6} {'hard':>4}  " \
           f"{'new e/m/h':>10} {'usd':>9}"
    lines = ["soda: " + head]
    for c in f["cycles"]:
        t, n = c["tiers"], c["new_questions"]
        new = "/".join(str(n.get(x, 0)) for x in ("easy", "medium", "hard"))
        lines.append(f"soda: {c['cycle']:>5} {c['questions']:>9} {sum(c['questions_dropped'].values()):>7} "
                     f"{c['pairs_kept']:>5} {t.get('easy', 0):>4} {t.get('medium', 0):>6} {t.get('hard', 0):>4}  "
                     f"{new:>10} {'$' + format(c['usd'], '.4f'):>9}")
    for c in f["cycles"]:
        k = c["cycle"]
        lines.append(f"soda: cycle {k}: pairs kept {c['pairs_kept']}, dropped {_reasons(c['pairs_dropped'])}; "
                     f"questions dropped {_reasons(c['questions_dropped'])}; new questions dropped "
                     f"{_reasons(c['new_questions_dropped'])}")
        lines.append(f"soda: cycle {k}: judge scores " + " ".join(f"{b}:{n}" for b, n in c["judge_scores"].items())
                     + f" (unparsed {c['judge_unparsed']})")
        lines.append(f"soda: cycle {k}: cost " + (", ".join(
            f"{name} ${v['usd']:.4f} ({v['calls']} calls)" for name, v in c["cost"].items()) or "-"))
    lines.append("soda: kept " + (", ".join(f"{k}={n}" for k, n in f["kept"].items()) or "nothing"))
    return lines
