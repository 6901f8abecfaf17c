"""AKD's funnel for ``distillc show``: tasks asked, teacher answers (and how many carry top-k
log-probabilities), what the later stages dropped and why, and the records kept per variant."""

from __future__ import annotations

from typing import Any

from compiler.inspect import variant_counts
from compiler.store import outputs
from compiler.store.db import Store
from compiler.store.versions import Version


def akd_funnel(store: Store, version: Version) -> dict[str, Any] | None:
    """AKD's counts for a version built with ``akd_teacher``; None for other recipes."""
    steps = version.stages
    at = next((i for i, s in enumerate(steps) if s["uses"] == "akd_teacher"), None)
    if at is None:
        return None
    fp = steps[at]["fingerprint"]
    info = outputs.output_info(store, fp) or {}
    dropped: dict[str, int] = {}
    for step in steps[at + 1:]:
        for reason, n in outputs.rejection_counts(store, step["fingerprint"]).items():
            dropped[reason] = dropped.get(reason, 0) + n
    return {
        "tasks": info.get("rows_in"),
        "answers": info.get("rows_out"),
        "failed": outputs.rejection_counts(store, fp).get("llm_failed", 0),
        "with_topk": _with_topk(store, fp),
        "dropped": dropped,
        "kept": variant_counts(store, version),
    }


def _with_topk(store: Store, fp: str) -> int:
    table = outputs.table_name(fp)
    rows = store.con.execute(f"SELECT count(teacher_topk) FROM {table}").fetchall()
    return int(rows[0][0]) if rows else 0


def render_funnel(f: dict[str, Any]) -> list[str]:
    """Three lines: answers, drops by reason, kept records per variant."""
    drops = ", ".join(f"{k}={n}" for k, n in sorted(f["dropped"].items(), key=lambda kv: (-kv[1], kv[0]))) or "nothing"
    return [
        f"akd: tasks={f['tasks']}  teacher answers={f['answers']} (failed {f['failed']}, "
        f"with top-k logprobs {f['with_topk']})",
        f"akd: dropped {drops}",
        "akd: kept " + (", ".join(f"{k}={n}" for k, n in f["kept"].items()) or "nothing"),
    ]
