"""What a corpus version is made of: per-stage funnel, calls and cost (read-only queries)."""

from __future__ import annotations

from typing import Any

from compiler.store import outputs
from compiler.store.db import Store
from compiler.store.versions import Version


def stage_calls(store: Store, fp: str) -> dict[str, Any]:
    sent, hits, usd = store.con.execute(
        "SELECT count(*) FILTER (WHERE status NOT IN ('cache_hit', 'pending', 'interrupted')), "
        "count(*) FILTER (WHERE status = 'cache_hit'), coalesce(sum(usd), 0) "
        "FROM llm_calls WHERE stage_fp = ?", [fp]).fetchall()[0]
    return {"llm_calls": int(sent), "cache_hits": int(hits), "usd": float(usd)}


def funnel(store: Store, version: Version) -> list[dict[str, Any]]:
    stages = []
    for s in version.stages:
        info = outputs.output_info(store, s["fingerprint"]) or {}
        stages.append({
            "name": s["name"], "uses": s["uses"], "fingerprint": s["fingerprint"],
            "rows_in": info.get("rows_in"), "rows_out": info.get("rows_out"),
            "dropped": outputs.rejection_counts(store, s["fingerprint"]),
            "seconds": round(info.get("seconds") or 0.0, 3),
            **stage_calls(store, s["fingerprint"]),
        })
    return stages


def variant_counts(store: Store, version: Version) -> dict[str, int]:
    table = outputs.table_name(version.fingerprint)
    cols = [r[0] for r in store.con.execute(f"DESCRIBE {table}").fetchall()]
    if "variant" not in cols:
        return {}
    rows = store.con.execute(f"SELECT variant, count(*) FROM {table} GROUP BY 1 ORDER BY 1").fetchall()
    return {v: int(n) for v, n in rows}


# -- PERsD's funnel ----------------------------------------------------------------------------------

_REFINE_STAGES = ("teacher_refine", "persd_rounds")


def persd_funnel(store: Store, version: Version) -> dict[str, Any] | None:
    """PERsD's counts for a version built with ``student_attempt``: tasks attempted, attempts
    passed/failed, teacher refinements requested (distinct refinement rows in the ledger) / parsed
    (code found in the answer) / passed (all tests), summed over rounds. None for other recipes."""
    steps = version.stages
    attempts = [s for s in steps if s["uses"] == "student_attempt"]
    if not attempts:
        return None
    refine_fps = [s["fingerprint"] for s in steps if s["uses"] in _REFINE_STAGES]
    drops = [outputs.rejection_counts(store, fp) for fp in refine_fps]
    passed = sum(d.get("attempt_passed", 0) for d in drops)
    requested = _teacher_requests(store, refine_fps)
    refined = _refinement_rows(store, steps)
    return {
        "tasks": (outputs.output_info(store, attempts[0]["fingerprint"]) or {}).get("rows_in"),
        "attempts": passed + requested + sum(d.get("no_gold", 0) for d in drops),
        "attempts_passed": passed,
        "attempts_failed": requested + sum(d.get("no_gold", 0) for d in drops),
        "refinements_requested": requested,
        "refinements_parsed": _count_true(refined, "refine_parsed"),
        "refinements_passed": _count_true(refined, "refine_passed"),
        "kept": variant_counts(store, version),
    }


def _teacher_requests(store: Store, fps: list[str]) -> int:
    if not fps:
        return 0
    rows = store.con.execute(
        "SELECT count(DISTINCT r) FROM (SELECT unnest(from_json(served_rows, '[\"VARCHAR\"]')) AS r "
        "FROM llm_calls WHERE role = 'teacher' AND list_contains(?, stage_fp))", [fps]).fetchall()
    return int(rows[0][0])


def _refinement_rows(store: Store, steps: list[dict[str, Any]]) -> Any:
    """The rows of every refinement before the acceptance filter: the input of
    ``keep_refinements`` (else of ``emit_persd``)."""
    for uses in ("keep_refinements", "emit_persd"):
        at = next((i for i, s in enumerate(steps) if s["uses"] == uses), None)
        if at:
            return outputs.load_output(store, steps[at - 1]["fingerprint"])
    return None


def _count_true(frame: Any, column: str) -> int:
    if frame is None or column not in frame.columns:
        return 0
    return int(frame[column].fill_null(False).sum())
