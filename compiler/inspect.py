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
