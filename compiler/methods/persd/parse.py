"""``parse_refinement`` and ``keep_refinements``: the teacher's rectified code out of its answer
(METHODS §1(b) P4), and PERsD's acceptance rule (only refinements that pass all the task's tests)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl
from pydantic import Field

from compiler.stages.base import Params, Stage, StageOutput, empty_rejections, register, rejections
from compiler.stages.filters import require_columns
from compiler.methods.persd.extract import parse_refinement

if TYPE_CHECKING:
    from compiler.runner import StageContext


@register
class ParseRefinement(Stage):
    """Takes the rectified code out of the teacher's answer as PERsD does: the text after the last
    ``RECTIFIED CODE`` marker, then its last fenced block, else its indented / ``def`` /
    ``import`` / ``from`` lines, and when fewer than ``min_lines`` lines are left, the student's
    own code. Adds ``refine_code``, ``refine_parse`` (``fence``, ``lines`` or ``student``: where
    the code came from), ``refine_parsed`` (not the student fallback) and ``refine_nl_feedback``
    (the teacher's FEEDBACK text when ``teacher_refine`` ran with ``feedback: nl``). Drops nothing:
    a fallback row fails its tests and ``keep_refinements`` drops it."""

    name = "parse_refinement"
    version = 2
    reads = ("{column}", "{student_code}")
    writes = ("{output}", "refine_parse", "refine_parsed", "refine_nl_feedback")

    class Params(Params):
        column: str = Field(default="refine_text", description="the teacher's answer")
        student_code: str = Field(default="attempt_code", description="the student's code (the last resort)")
        output: str = Field(default="refine_code", description="column to write the code to")
        min_lines: int = Field(default=2, ge=1, description="fewer non-blank lines than this falls back to "
                               "the student's code (PERsD: more than one line)")

    def run(self, frame: pl.DataFrame, ctx: "StageContext") -> StageOutput:
        p = self.params
        require_columns(frame, self.name, p.column, p.student_code)
        nl = frame["refine_feedback_kind"] == "nl" if "refine_feedback_kind" in frame.columns \
            else pl.Series([False] * frame.height, dtype=pl.Boolean)
        parsed = [parse_refinement(text or "", student or "", nl=bool(is_nl), min_lines=p.min_lines)
                  for text, student, is_nl in zip(frame[p.column], frame[p.student_code], nl)]
        return StageOutput(frame.with_columns(
            pl.Series(p.output, [r.code for r in parsed], dtype=pl.String),
            pl.Series("refine_parse", [r.method for r in parsed], dtype=pl.String),
            pl.Series("refine_parsed", [r.parsed for r in parsed], dtype=pl.Boolean),
            pl.Series("refine_nl_feedback", [r.feedback for r in parsed], dtype=pl.String),
        ))


@register
class KeepRefinements(Stage):
    """PERsD's acceptance rule: keeps the refinements that pass all their task's tests and drops the
    others with reason ``refinement_failed`` (detail: status and feedback). ``unfiltered: true`` keeps
    them all (PERsD's ``*_nofilter`` ablation); ``refine_accepted`` records the verdict either way."""

    name = "keep_refinements"
    version = 1
    reads = ("{passed}",)
    writes = ("refine_accepted",)

    class Params(Params):
        passed: str = Field(default="refine_passed", description="boolean column: the refinement passed")
        unfiltered: bool = Field(default=False, description="keep failing refinements too (ablation)")

    def run(self, frame: pl.DataFrame, ctx: "StageContext") -> StageOutput:
        p = self.params
        require_columns(frame, self.name, p.passed)
        ok = pl.col(p.passed).fill_null(False)
        marked = frame.with_columns(ok.alias("refine_accepted"))
        if p.unfiltered:
            return StageOutput(marked, empty_rejections())
        prefix = p.passed.removesuffix("_passed")
        detail = pl.concat_str([pl.col(f"{prefix}_status").fill_null(""), pl.lit(": "),
                                pl.col(f"{prefix}_feedback").fill_null("").str.slice(0, 300)]) \
            if f"{prefix}_status" in frame.columns else None
        return StageOutput(marked.filter(ok), rejections(marked.filter(~ok), "refinement_failed", detail))
