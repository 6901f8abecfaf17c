"""Module candidates on their way into the database (METHODS §2(b) A2/A6): each comes from a row,
must run in isolation, carry at least ``min_tests`` tests and pass them in the sandbox. Every
candidate that does not make it is a rejection row with its reason (``module_not_isolated``,
``module_too_few_tests``, ``module_failed_tests``, ``module_not_novel``), named after the row it came
from."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import polars as pl

from compiler.moduledb import add_modules
from compiler.moduledb.records import Found, Module, verification_job
from compiler.stages.base import derive_id, empty_rejections

if TYPE_CHECKING:
    from compiler.runner import StageContext


@dataclass(frozen=True)
class Candidate:
    module: Module
    row_id: str
    task_id: str | None


class Outcomes:
    """The rejections of one stage's candidates, and the modules it added per row."""

    def __init__(self, stage: str):
        self.stage = stage
        self.rejected: list[dict[str, Any]] = []
        self.added: dict[str, list[str]] = {}

    def reject(self, row_id: str, task_id: str | None, name: str, reason: str, detail: str) -> None:
        self.rejected.append({"row_id": derive_id(row_id, self.stage, "module", name), "task_id": task_id,
                              "reason": reason, "detail": f"{name}: {detail}"})

    def frame(self) -> pl.DataFrame:
        return pl.DataFrame(self.rejected, schema=empty_rejections().schema) if self.rejected else empty_rejections()


def candidates_from(found: list[Found], row: dict[str, Any], out: Outcomes) -> list[Candidate]:
    """The isolated functions of a row as candidates; the others rejected (``module_not_isolated``)."""
    kept = []
    for f in found:
        if f.module is None:
            out.reject(row["row_id"], row.get("task_id"), f.name, "module_not_isolated",
                       "uses names it does not define or import: " + ", ".join(f.missing))
        else:
            kept.append(Candidate(f.module, row["row_id"], row.get("task_id")))
    return kept


def with_tests(c: Candidate, tests: list[str], min_tests: int, out: Outcomes) -> Candidate | None:
    if len(tests) < min_tests:
        out.reject(c.row_id, c.task_id, c.module.name, "module_too_few_tests",
                   f"{len(tests)} usable assert(s), at least {min_tests} needed")
        return None
    return replace(c, module=replace(c.module, tests=tuple(tests)))


def unique(cands: list[Candidate]) -> list[Candidate]:
    seen: set[str] = set()
    return [c for c in cands if not (c.module.module_id in seen or seen.add(c.module.module_id))]


def verify_and_add(cands: list[Candidate], ctx: "StageContext", out: Outcomes, cpu_seconds: float) -> list[str]:
    """Run each tested candidate's tests; add those that pass (and untested ones, unverified) to the
    database as added by this stage output; returns the ids added."""
    tested = [c for c in cands if c.module.tests]
    results = ctx.execute([verification_job(c.module, cpu_seconds) for c in tested])
    passed = {c.module.module_id for c, r in zip(tested, results) if r.passed}
    for c, r in zip(tested, results):
        if not r.passed:
            out.reject(c.row_id, c.task_id, c.module.name, "module_failed_tests",
                       f"{r.status.value}: {(r.feedback or '').strip()[:300]}")
    keep = [replace(c, module=replace(c.module, verified=c.module.module_id in passed)) for c in cands
            if not c.module.tests or c.module.module_id in passed]
    added = set(add_modules(ctx.store, ctx.embeddings(), [c.module for c in keep], ctx.fingerprint))
    for c in keep:
        if c.module.module_id in added:
            out.added.setdefault(c.row_id, []).append(c.module.module_id)
    return sorted(added)
