"""PERsD's funnel for ``distillc show``: tasks attempted, attempts passed and failed, refinements
requested, parsed and passed, and the records kept per variant (summed over rounds); with
``persd_rounds``, also per round (``rounds``: attempts passed, refinements that reached the acceptance
filter, parsed and passed)."""

from __future__ import annotations

from typing import Any

from compiler.inspect import variant_counts
from compiler.store import outputs
from compiler.store.db import Store
from compiler.store.versions import Version

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
    by_round = _by_round(store, refine_fps, refined) if any(s["uses"] == "persd_rounds" for s in steps) else None
    return {
        "tasks": (outputs.output_info(store, attempts[0]["fingerprint"]) or {}).get("rows_in"),
        "attempts": passed + requested + sum(d.get("no_gold", 0) for d in drops),
        "attempts_passed": passed,
        "attempts_failed": requested + sum(d.get("no_gold", 0) for d in drops),
        "refinements_requested": requested,
        "refinements_parsed": _count_true(refined, "refine_parsed"),
        "refinements_passed": _count_true(refined, "refine_passed"),
        "kept": variant_counts(store, version),
        **({"rounds": by_round} if by_round is not None else {}),
    }


def _by_round(store: Store, fps: list[str], refined: Any) -> list[dict[str, int]]:
    """Per round: attempts passed (the refine stages' ``attempt_passed`` drops, whose detail names
    later rounds as ``round <k>:``), and the refinements that reached the acceptance filter."""
    passed = dict(store.con.execute(
        "SELECT coalesce(try_cast(regexp_extract(detail, '^round (\\d+):', 1) AS INTEGER), 1), count(*) "
        "FROM rejections WHERE list_contains(?, fingerprint) AND reason = 'attempt_passed' GROUP BY 1", [fps]).fetchall())
    counts: dict[int, dict[str, int]] = {}
    if refined is not None and "round" in refined.columns:
        for k in refined["round"].drop_nulls().unique().to_list():
            rows = refined.filter(refined["round"] == k)
            counts[int(k)] = {"refinements": rows.height, "refinements_parsed": _count_true(rows, "refine_parsed"),
                              "refinements_passed": _count_true(rows, "refine_passed")}
    empty = {"refinements": 0, "refinements_parsed": 0, "refinements_passed": 0}
    return [{"round": k, "attempts_passed": int(passed.get(k, 0)), **counts.get(k, empty)}
            for k in sorted(set(passed) | set(counts))]


def _teacher_requests(store: Store, fps: list[str]) -> int:
    if not fps:
        return 0
    rows = store.con.execute(
        "SELECT count(DISTINCT r) FROM (SELECT unnest(from_json(served_rows, '[\"VARCHAR\"]')) AS r "
        "FROM llm_calls WHERE role = 'teacher' AND list_contains(?, stage_fp) AND position(':' IN stage) = 0)", [fps]).fetchall()
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


def render_funnel(f: dict[str, Any]) -> list[str]:
    """PERsD's funnel in three lines: tasks and attempts, refinements, kept records per variant."""
    return [
        f"persd: tasks={f['tasks']}  attempts={f['attempts']} (passed {f['attempts_passed']}, "
        f"failed {f['attempts_failed']})",
        f"persd: refinements requested={f['refinements_requested']}  parsed={f['refinements_parsed']}  "
        f"passed={f['refinements_passed']}",
        "persd: kept " + (", ".join(f"{k}={n}" for k, n in f["kept"].items()) or "nothing"),
    ]
