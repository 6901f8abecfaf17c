"""What a corpus version cost: ledger totals per stage or model, and per kept example through its
lineage. Interrupted calls (sent, but the process died before their answer was recorded) are not in
the total: they are listed apart, each with the most it could have cost.

Per example, every dollar of the version's ledger is assigned to exactly one place, so the examples
add up to the total:

- a call's cost goes to the rows it served (split evenly when it served several);
- a row's cost is shared evenly by the kept examples descending from it (its *survivors*): an
  example pays its share of every ancestor — the task, the student attempt, the synthesized tests,
  the refinement — and of itself;
- a row with no survivors (a failed attempt, a refinement that did not pass, a discarded sample)
  hands its cost up to its nearest ancestor that has survivors, so the kept siblings pay for the
  discarded ones ("share of discarded siblings");
- what reaches a root with no survivors at all (a task that yielded nothing) is shared by every
  kept example of the version ("unattributed").
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from compiler.llm import ledger
from compiler.store import outputs
from compiler.store.db import Store
from compiler.store.versions import Version


@dataclass
class Lineage:
    parents: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    final: list[dict[str, Any]] = field(default_factory=list)   # row_id, task_id, variant
    task_roots: dict[str, str] = field(default_factory=dict)    # task_id -> task row id

    def ancestors(self, row: str) -> set[str]:
        seen, todo = {row}, [row]
        while todo:
            for p in self.parents.get(todo.pop(), ()):
                if p not in seen:
                    seen.add(p)
                    todo.append(p)
        return seen


def load_lineage(store: Store, version: Version) -> Lineage:
    lin = Lineage()
    for i, fp in enumerate(version.fingerprints):
        table = outputs.table_name(fp)
        cols = {r[0] for r in store.con.execute(f"DESCRIBE {table}").fetchall()}
        extra = ", task_id" if "task_id" in cols else ", NULL AS task_id"
        for row_id, parents, task_id in store.con.execute(
                f"SELECT row_id, parent_ids{extra} FROM {table}").fetchall():
            lin.parents[row_id].update(p for p in (parents or ()) if p != row_id)
            if i == 0 and task_id is not None:
                lin.task_roots.setdefault(task_id, row_id)
    final = outputs.table_name(version.fingerprint)
    cols = {r[0] for r in store.con.execute(f"DESCRIBE {final}").fetchall()}
    variant = "variant" if "variant" in cols else "NULL AS variant"
    task = "task_id" if "task_id" in cols else "NULL AS task_id"
    lin.final = [{"row_id": r, "task_id": t, "variant": v} for r, t, v in store.con.execute(
        f"SELECT row_id, {task}, {variant} FROM {final}").fetchall()]
    return lin


def _orphan_roots(store: Store, version: Version, lin: Lineage, rows: set[str]) -> dict[str, str]:
    """Rows that were served by a call but dropped before any stage output kept them (e.g. a failed
    request): attach them to their task's root row through the rejections table."""
    missing = [r for r in rows if r not in lin.parents]
    if not missing:
        return {}
    found = store.con.execute(
        "SELECT row_id, any_value(task_id) FROM rejections WHERE list_contains(?, fingerprint) "
        "AND list_contains(?, row_id) GROUP BY row_id", [version.fingerprints, missing]).fetchall()
    return {r: lin.task_roots[t] for r, t in found if t in lin.task_roots}


def per_example(store: Store, version: Version, explain: int = 0) -> dict[str, Any]:
    """Each kept example's dollars (rules in the module docstring), computed in DuckDB
    (:mod:`compiler.lineage_cost`); with ``explain`` > 0, the ``explain`` dearest examples also get
    ``lineage``: what they pay, by stage and model, for their ancestors' calls and for discarded
    siblings'."""
    from compiler.lineage_cost import per_example_sql

    return per_example_sql(store, version, explain)


def per_example_walk(store: Store, version: Version) -> dict[str, Any]:
    """The same figures as :func:`per_example` by walking the lineage in Python: the readable
    definition, kept as the reference the SQL is tested against (slow beyond ~10k examples)."""
    lin = load_lineage(store, version)
    direct = ledger.cost_by_row(store.con, version.fingerprints)
    for row, root in _orphan_roots(store, version, lin, set(direct)).items():
        lin.parents[row].add(root)
    survivors: dict[str, int] = defaultdict(int)
    ancestry = {}
    for ex in lin.final:
        ancestry[ex["row_id"]] = lin.ancestors(ex["row_id"])
        for a in ancestry[ex["row_id"]]:
            survivors[a] += 1
    own, pushed = defaultdict(float), defaultdict(float)
    unattributed = 0.0
    for row, usd in direct.items():
        unattributed += _assign(row, usd, lin, survivors, own, pushed)
    per_global = unattributed / len(lin.final) if lin.final else 0.0
    examples = []
    for ex in lin.final:
        anc = ancestry[ex["row_id"]]
        o = sum(own[a] for a in anc)
        s = sum(pushed[a] for a in anc)
        examples.append({**ex, "usd": o + s + per_global, "ancestors_usd": o, "siblings_usd": s,
                         "unattributed_usd": per_global})
    return {"examples": examples, "total_usd": sum(direct.values()),
            "unattributed_usd": unattributed if not lin.final else 0.0}


def _assign(row: str, usd: float, lin: Lineage, survivors: dict[str, int],
            own: dict[str, float], pushed: dict[str, float]) -> float:
    """Put ``usd`` on ``row`` (shared by its survivors) or hand it up; returns what found no home."""
    if survivors.get(row):
        own[row] += usd / survivors[row]
        return 0.0
    frontier, lost = {row: usd}, 0.0
    while frontier:
        nxt: dict[str, float] = defaultdict(float)
        for r, amount in frontier.items():
            ps = [p for p in lin.parents.get(r, ()) if p != r]
            if not ps:
                lost += amount
                continue
            for p in ps:
                if survivors.get(p):
                    pushed[p] += amount / len(ps) / survivors[p]
                else:
                    nxt[p] += amount / len(ps)
        frontier = nxt
    return lost


def version_cost(store: Store, version: Version, by: str | None) -> dict[str, Any]:
    fps = version.fingerprints
    total = ledger.totals(store.con, stage_fps=fps)[0]
    out: dict[str, Any] = {"corpus": version.corpus, "version": version.version, "ref": version.ref,
                           "total": total, "usd": float(total["usd"]), "rows": version.rows,
                           "reused_usd": reused_usd(store, fps),
                           "interrupted": ledger.interrupted_calls(store.con, fps)}
    if by in ("stage", "model"):
        groups = ledger.totals(store.con, by=by, stage_fps=fps)
        if by == "stage":
            order = {s["name"]: i for i, s in enumerate(version.stages)}
            groups.sort(key=lambda g: (order.get(g["stage"].split(":")[0], len(order)), g["stage"]))
        out["by"], out["groups"] = by, groups
    elif by == "example":
        ex = per_example(store, version)
        out["by"], out["examples"] = by, ex["examples"]
        out["per_example_usd"] = out["usd"] / len(ex["examples"]) if ex["examples"] else None
        out["by_variant"] = _by_variant(ex["examples"])
    return out


def _by_variant(examples: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    groups: dict[str, list[float]] = defaultdict(list)
    for e in examples:
        groups[e["variant"] or "-"].append(e["usd"])
    return {v: {"examples": len(xs), "usd": sum(xs), "mean_usd": sum(xs) / len(xs)} for v, xs in groups.items()}


def reused_usd(store: Store, fps: list[str]) -> float:
    """What the cache hits of these stages cost when they were first paid for (not in the total)."""
    rows = store.con.execute(
        "WITH hits AS (SELECT key FROM llm_calls WHERE status = 'cache_hit' AND list_contains(?, stage_fp)), "
        "paid AS (SELECT key, max(usd) AS usd FROM llm_calls WHERE status IN ('ok', 'retried') GROUP BY key) "
        "SELECT coalesce(sum(paid.usd), 0) FROM hits JOIN paid USING (key)", [fps]).fetchall()
    return float(rows[0][0])
