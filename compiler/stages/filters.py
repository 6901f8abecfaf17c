"""``filter``: keep or drop rows, recording a reason for every drop."""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl
from pydantic import Field

from compiler.codeparse import defines
from compiler.errors import DistillcError
from compiler.stages.base import Params, Scope, Stage, StageOutput, empty_rejections, register, rejections

if TYPE_CHECKING:
    from compiler.runner import StageContext


def require_columns(frame: pl.DataFrame, stage: str, *columns: str | None) -> None:
    missing = [c for c in columns if c and c not in frame.columns]
    if missing:
        raise DistillcError(f"stage {stage!r}: column {missing[0]!r} does not exist here "
                            f"(columns: {', '.join(frame.columns)})")


@register
class Filter(Stage):
    """Drops rows that fail a check, each with a reason: ``failed_tests`` (the ``passed`` column is
    false; detail: status and feedback), ``missing_entry_point`` (the code does not define the
    task's entry point), ``too_short`` / ``too_long`` (code lines / characters), ``over_task_quota``
    (more than ``max_per_task`` rows of one task survive; the first ones are kept)."""

    name = "filter"
    version = 1
    reads = ("{passed}", "{code}", "entry_point")

    class Params(Params):
        passed: str | None = Field(default="exec_passed", description="boolean column that must be true "
                                   "(null: no test check)")
        code: str = Field(default="code", description="code column the other checks read")
        require_entry_point: bool = Field(default=True, description="code must define the task's entry point")
        min_lines: int = Field(default=1, ge=0, description="minimum non-blank code lines")
        max_chars: int | None = Field(default=20000, ge=1, description="maximum code length in characters")
        max_per_task: int | None = Field(default=None, ge=1, description="keep at most this many rows per task")

    @classmethod
    def scope_for(cls, params: "Filter.Params") -> Scope:
        return "task" if params.max_per_task is not None else "row"

    def run(self, frame: pl.DataFrame, ctx: "StageContext") -> StageOutput:
        p = self.params
        require_columns(frame, self.name, p.passed, p.code)
        kept, dropped = frame, [empty_rejections()]
        for reason, keep, detail in self._checks(frame):
            dropped.append(rejections(kept.filter(~keep), reason, detail))
            kept = kept.filter(keep)
        if p.max_per_task is not None and kept.height:
            rank = pl.int_range(pl.len()).over("task_id")
            dropped.append(rejections(kept.filter(rank >= p.max_per_task), "over_task_quota",
                                      f"more than {p.max_per_task} rows for this task"))
            kept = kept.filter(rank < p.max_per_task)
        return StageOutput(kept, pl.concat(dropped))

    def _checks(self, frame: pl.DataFrame):
        p = self.params
        code = pl.col(p.code).fill_null("")
        if p.passed:
            prefix = p.passed[: -len("_passed")] if p.passed.endswith("_passed") else None
            detail = (pl.concat_str([pl.col(f"{prefix}_status"), pl.lit(": "),
                                     pl.col(f"{prefix}_feedback").fill_null("").str.slice(0, 300)])
                      if prefix and f"{prefix}_status" in frame.columns else None)
            yield "failed_tests", pl.col(p.passed).fill_null(False), detail
        if p.require_entry_point:
            ok = pl.struct([p.code, "entry_point"]).map_elements(
                lambda r: r["entry_point"] is None or defines(r[p.code] or "", r["entry_point"]),
                return_dtype=pl.Boolean)
            yield "missing_entry_point", ok, "code does not define the entry point"
        lines = code.str.split("\n").list.eval(pl.element().str.strip_chars().str.len_chars() > 0).list.sum()
        yield "too_short", lines >= p.min_lines, f"fewer than {p.min_lines} code lines"
        if p.max_chars is not None:
            yield "too_long", code.str.len_chars() <= p.max_chars, f"more than {p.max_chars} characters"
