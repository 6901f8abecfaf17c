"""AMR-Evol's funnel for ``distillc show``: instructions per level, direct answers, specs per answer,
retrieval hit rate (rows with at least one module: always all of them unless ``min_score`` is set) and
the mean cosine of each row's best module, evolved answers, the module database's size before and after, and the cost of
each stage."""

from __future__ import annotations

from typing import Any

from compiler.llm import ledger
from compiler.store import modules as db
from compiler.store import outputs
from compiler.store.db import Store
from compiler.store.versions import Version

OWN = ("self_instruct", "evol_instruct", "seed_modules", "modular_decompose", "retrieve_modules", "evolve_response",
       "grow_modules", "cot_answer", "teacher_tests", "repair_answer")
ANSWERS = ("teacher_answer", "cot_answer")


def _step(version: Version, uses: str) -> tuple[int, dict[str, Any]] | None:
    return next(((i, s) for i, s in enumerate(version.stages) if s["uses"] == uses), None)


def _column(store: Store, fp: str, sql: str, column: str) -> Any:
    table = outputs.table_name(fp)
    cols = {r[0] for r in store.con.execute(f"DESCRIBE {table}").fetchall()}
    return store.con.execute(f"SELECT {sql} FROM {table}").fetchall()[0] if column in cols else None


def _levels(store: Store, version: Version) -> dict[str, int]:
    """Instructions per level that reached the direct answer (the output of the step before it)."""
    at = next((i for i, s in enumerate(version.stages) if s["uses"] in ANSWERS), None)
    fp = version.stages[at - 1]["fingerprint"] if at else None
    if fp is None or _column(store, fp, "1", "level") is None:
        return {}
    rows = store.con.execute(f"SELECT coalesce(level, 'seed'), count(*) FROM {outputs.table_name(fp)} "
                             "GROUP BY 1 ORDER BY 1").fetchall()
    return {k: int(n) for k, n in rows}


def _rows_out(store: Store, version: Version, uses: str) -> int | None:
    found = _step(version, uses)
    return (outputs.output_info(store, found[1]["fingerprint"]) or {}).get("rows_out") if found else None


def _decomposition(store: Store, version: Version) -> dict[str, Any] | None:
    found = _step(version, "modular_decompose")
    if not found:
        return None
    fp = found[1]["fingerprint"]
    total, mean = _column(store, fp, "coalesce(sum(n_specs), 0), avg(n_specs)", "n_specs")
    drops = outputs.rejection_counts(store, fp)
    return {"answers": _rows_out(store, version, "modular_decompose"), "specs": int(total),
            "specs_per_answer": round(float(mean or 0), 2), "unparsable_specs": drops.get("unparsable_spec", 0),
            "no_specs": drops.get("no_specs", 0)}


def _retrieval(store: Store, version: Version) -> dict[str, Any] | None:
    found = _step(version, "retrieve_modules")
    if not found:
        return None
    rows, hits, mean, horizon, best = _column(
        store, found[1]["fingerprint"], "count(*), count(*) FILTER (WHERE n_retrieved > 0), avg(n_retrieved), "
        "max(db_horizon), avg(CAST(json_extract(retrieved, '$[0].score') AS DOUBLE))", "db_horizon")
    return {"rows": int(rows), "hit_rate": round(hits / rows, 4) if rows else None,
            "modules_per_row": round(float(mean or 0), 2), "best_score_mean": None if best is None else round(best, 4),
            "horizon": int(horizon or 0)}


def _database(store: Store, version: Version, retrieval: dict[str, Any] | None) -> dict[str, Any] | None:
    seed, grow = _step(version, "seed_modules"), _step(version, "grow_modules")
    if not (seed or grow or retrieval):
        return None
    seeded = db.added_by(store, [seed[1]["fingerprint"]]) if seed else 0
    grown = db.added_by(store, [grow[1]["fingerprint"]]) if grow else 0
    seen = db.count(store, upto=retrieval["horizon"]) if retrieval else db.count(store)
    return {"before": seen - seeded, "seeded": seeded, "at_retrieval": seen, "grown": grown, "after": seen + grown}


def _cost(store: Store, version: Version) -> dict[str, dict[str, Any]]:
    groups = ledger.totals(store.con, by="stage", stage_fps=version.fingerprints)
    order = {s["name"]: i for i, s in enumerate(version.stages)}
    groups.sort(key=lambda g: (order.get(g["stage"].split(":")[0], len(order)), g["stage"]))
    return {g["stage"]: {"calls": int(g["calls"]), "usd": float(g["usd"])} for g in groups}


def amr_funnel(store: Store, version: Version) -> dict[str, Any] | None:
    """AMR-Evol's counts for a version built with any of its stages; None otherwise."""
    if not any(s["uses"] in OWN for s in version.stages):
        return None
    retrieval = _retrieval(store, version)
    answers = next((n for n in (_rows_out(store, version, u) for u in ANSWERS) if n is not None), None)
    evolve = _step(version, "evolve_response")
    self_test = _column(store, evolve[1]["fingerprint"], "count(self_test_passed), count(*) FILTER (WHERE self_test_passed)",
                        "self_test_passed") if evolve else None
    return {"instructions": _levels(store, version), "direct_answers": answers,
            "decomposition": _decomposition(store, version), "retrieval": retrieval,
            "evolved_answers": _rows_out(store, version, "evolve_response"),
            "self_test": {"labelled": int(self_test[0]), "passed": int(self_test[1])} if self_test and self_test[0] else None,
            "repaired": _rows_out(store, version, "repair_answer"),
            "database": _database(store, version, retrieval), "cost": _cost(store, version)}


def render_funnel(f: dict[str, Any]) -> list[str]:
    """The funnel in a few lines (parts a version did not build are left out)."""
    levels = ", ".join(f"{k}={n}" for k, n in f["instructions"].items()) or "-"
    lines = [f"amr-evol: instructions {levels}  direct answers={f['direct_answers']}"]
    if (d := f["decomposition"]) is not None:
        lines.append(f"amr-evol: decomposed={d['answers']}  specs={d['specs']} ({d['specs_per_answer']} per answer; "
                     f"unparsable {d['unparsable_specs']}, no specs {d['no_specs']})")
    if (r := f["retrieval"]) is not None:
        rate = "-" if r["hit_rate"] is None else f"{r['hit_rate']:.0%}"
        best = "-" if r["best_score_mean"] is None else f"{r['best_score_mean']:.3f}"
        lines.append(f"amr-evol: retrieval rows={r['rows']}  hit rate={rate}  modules per row={r['modules_per_row']}  "
                     f"mean best cosine={best}")
    if f["evolved_answers"] is not None:
        st = f["self_test"]
        lines.append(f"amr-evol: evolved answers={f['evolved_answers']}"
                     + (f"  self-test passed {st['passed']} of {st['labelled']}" if st else ""))
    if f["repaired"] is not None:
        lines.append(f"amr-evol: answers after repair={f['repaired']}")
    if (m := f["database"]) is not None:
        lines.append(f"amr-evol: module database before={m['before']} (+{m['seeded']} seeded) at retrieval="
                     f"{m['at_retrieval']}  after={m['after']} (+{m['grown']} grown)")
    cost = ", ".join(f"{k} ${v['usd']:.4f} ({v['calls']} calls)" for k, v in f["cost"].items()) or "no calls"
    lines.append(f"amr-evol: cost per stage: {cost}")
    return lines
