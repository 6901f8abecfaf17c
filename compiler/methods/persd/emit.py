"""``emit_persd``: PERsD's training sets as named variants of one corpus version (METHODS §1(b) P5):
prompt/completion records whose completion is the function body alone, because the prompt ends with
the function header — plus the NL-feedback format (feedback, then the rectified code) and the
gold-as-refinement ablation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Literal

import polars as pl
from pydantic import Field

from compiler.codeparse import split_function
from compiler.methods.persd.extract import prompt_code
from compiler.methods.persd.templates import nl_refine_completion, nl_refine_prompt
from compiler.stages.base import Columns, Params, Stage, StageOutput, derive_id, register
from evals.persd_prompts import header_of, refine_prompt, text_to_code_prompt

if TYPE_CHECKING:
    from compiler.runner import StageContext

Variant = Literal["StanD", "InpD", "PERsD", "PERsD-refine", "PERsD-combined", "PERsD-refine-nl",
                  "PERsD-refine-gold"]
VARIANTS: tuple[str, ...] = ("StanD", "InpD", "PERsD", "PERsD-refine", "PERsD-combined")
NL_VARIANT = "PERsD-refine-nl"
RECORD_SCHEMA: dict[str, Any] = {
    "row_id": pl.String, "parent_ids": pl.List(pl.String), "task_id": pl.String, "source": pl.String,
    "variant": pl.String, "prompt": pl.String, "completion": pl.String, "round": pl.Int64,
}
Record = dict[str, Any]


def task_prompt(row: dict[str, Any]) -> str | None:
    """The text-to-code prompt of a task (P1), from its gold code."""
    code = prompt_code(row)
    return text_to_code_prompt(row["instruction"], code) if code is not None else None


def body(code: str | None, entry_point: str | None) -> str | None:
    """The entry point's body (``ast`` split, so defaults with colons are safe)."""
    parts = split_function(code or "", entry_point) if code and entry_point else None
    return parts.body if parts is not None else None


def student_refine_prompt(row: dict[str, Any]) -> str | None:
    """PERsD-refine's prompt (METHODS §1(c) item 3): task, the student's code, its error, then the
    task again and the header."""
    prompt = task_prompt(row)
    if prompt is None:
        return None
    return refine_prompt(task=row["instruction"], code=row["attempt_code"] or "",
                         error=row["attempt_feedback"] or "", header=header_of(prompt))


class Builder:
    """Makes records of one variant from rows; a row whose prompt or body cannot be built is
    remembered as a rejection (reason ``unsplittable``)."""

    def __init__(self, stage: str):
        self.stage = stage
        self.records: list[Record] = []
        self.rejected: list[Record] = []

    def add(self, variant: str, part: str, row: dict[str, Any], prompt: str | None, completion: str | None,
            reason: str = "unsplittable", why: str = "the function header could not be separated from its body") -> None:
        if prompt is None or completion is None:
            self.rejected.append({"row_id": row["row_id"], "task_id": row["task_id"], "reason": reason,
                                  "detail": f"{variant}: {why}"})
            return
        self.records.append({
            "row_id": derive_id(row["row_id"], self.stage, variant, part), "parent_ids": [row["row_id"]],
            "task_id": row["task_id"], "source": row["source"], "variant": variant,
            "prompt": prompt, "completion": completion, "round": row.get("round"),
        })


def gold_of(row: dict[str, Any]) -> str | None:
    """The gold of a refinement row: ``teacher_refine``'s ``gold_code`` (reference or teacher)."""
    return row.get("gold_code") or row["reference_solution"]


def first_per_task(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    return [r for r in rows if not (r["task_id"] in seen or seen.add(r["task_id"]))]


@register
class EmitPersd(Stage):
    """Writes PERsD's training sets as variants of one corpus (``variant`` column), each record a
    ``prompt``/``completion`` pair whose completion is a function body: ``StanD`` (every task of
    ``tasks_from``: task prompt → the task's reference body), ``InpD`` (each task with an accepted
    refinement, once: task prompt → gold body, the gold being the reference or, with
    ``teacher_refine``'s ``gold: teacher``, the teacher's direct answer), ``PERsD`` (each accepted
    refinement: task prompt → refined body), ``PERsD-refine`` (each accepted refinement: the
    refinement prompt with the task, the student's code and its error → refined body) and
    ``PERsD-combined`` (the PERsD-refine records plus text-to-code records whose target is the gold
    body, once per task, or the refined body, per ``combined_target``). Two more on request:
    ``PERsD-refine-nl`` (the NL-feedback format: the task, the student's code and its error →
    the teacher's FEEDBACK, then ``RECTIFIED CODE:`` and the refined code; written by default when
    ``teacher_refine`` ran with ``feedback: nl``) and ``PERsD-refine-gold`` (PERsD's
    gold-as-refinement ablation: the refinement prompt → gold body). The task prompt is the task as
    a docstring, a blank line, then the gold code up to the function header. Records link to the
    refinement row (StanD: the task row). Rows whose function cannot be split are dropped with
    reason ``unsplittable``; NL records without feedback text with ``no_feedback``."""

    name = "emit_persd"
    version = 2
    scope = "frame"

    class Params(Params):
        variants: list[Variant] | None = Field(
            default=None, min_length=1, description="the training sets to write (default: StanD, InpD, PERsD, "
            "PERsD-refine, PERsD-combined, and PERsD-refine-nl when the refinements carry NL feedback)")
        combined_target: Literal["gold", "refinement"] = Field(
            default="gold", description="text-to-code target in PERsD-combined (PERsD's code: gold)")
        tasks_from: str | None = Field(default=None, description="the earlier stage whose rows are StanD's "
                                       "tasks (default: the `synthesize_tests` stage, else the sources)")
        code: str = Field(default="refine_code", description="column with the refined code")

    @classmethod
    def columns(cls, params: "EmitPersd.Params") -> Columns:
        wanted = set(params.variants or VARIANTS)
        reads = ["task_id", "source", "instruction", "entry_point", "reference_solution", "header"]
        if wanted - {"StanD"}:
            reads += ["gold_code", "{code}", "round"]
        if wanted & {"PERsD-refine", "PERsD-combined", "PERsD-refine-gold", NL_VARIANT}:
            reads += ["attempt_code", "attempt_feedback"]
        if NL_VARIANT in wanted:
            reads.append("refine_nl_feedback")
        optional = ("refine_nl_feedback", "attempt_code", "attempt_feedback") if params.variants is None else ()
        return Columns.of(params, reads=tuple(reads), writes=tuple(RECORD_SCHEMA), replaces=True, optional=optional)

    @classmethod
    def earlier_stages(cls, params: "EmitPersd.Params") -> tuple[tuple[str, str], ...]:
        return (("tasks_from", params.tasks_from),) if params.tasks_from else ()

    def run(self, frame: pl.DataFrame, ctx: "StageContext") -> StageOutput:
        builder = Builder(self.name)
        rows = list(frame.iter_rows(named=True))
        makers: dict[str, Callable[[], None]] = {
            "StanD": lambda: self._stand(builder, self._tasks(ctx)),
            "InpD": lambda: self._gold(builder, "InpD", first_per_task(rows)),
            "PERsD": lambda: self._refined(builder, "PERsD", rows),
            "PERsD-refine": lambda: self._refine(builder, "PERsD-refine", rows),
            "PERsD-combined": lambda: self._combined(builder, rows),
            NL_VARIANT: lambda: self._nl(builder, rows),
            "PERsD-refine-gold": lambda: self._refine_gold(builder, rows),
        }
        for variant in self._variants(frame):
            makers[variant]()
        rejected = pl.DataFrame(builder.rejected, schema={"row_id": pl.String, "task_id": pl.String,
                                                           "reason": pl.String, "detail": pl.String})
        return StageOutput(pl.DataFrame(builder.records, schema=RECORD_SCHEMA), rejected)

    def _variants(self, frame: pl.DataFrame) -> list[str]:
        if self.params.variants is not None:
            return list(self.params.variants)
        nl = "refine_nl_feedback" in frame.columns and frame["refine_nl_feedback"].is_not_null().any()
        return [*VARIANTS, NL_VARIANT] if nl else list(VARIANTS)

    def _tasks(self, ctx: "StageContext") -> pl.DataFrame:
        name = self.params.tasks_from
        if name is None and ctx.plan is not None:
            name = next((s.name for s in ctx.plan.steps[: ctx.step.index] if s.uses == "synthesize_tests"), None)
        return ctx.output_of(name) if name is not None else ctx.tasks()

    def _stand(self, b: Builder, tasks: pl.DataFrame) -> None:
        for row in tasks.iter_rows(named=True):
            b.add("StanD", "gold", {**row, "round": None}, task_prompt(row),
                  body(row["reference_solution"], row["entry_point"]))

    def _gold(self, b: Builder, variant: str, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            b.add(variant, "gold", row, task_prompt(row), body(gold_of(row), row["entry_point"]))

    def _refined(self, b: Builder, variant: str, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            b.add(variant, "refined", row, task_prompt(row), body(row[self.params.code], row["entry_point"]))

    def _refine(self, b: Builder, variant: str, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            b.add(variant, "refine", row, student_refine_prompt(row), body(row[self.params.code], row["entry_point"]))

    def _refine_gold(self, b: Builder, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            b.add("PERsD-refine-gold", "refine-gold", row, student_refine_prompt(row),
                  body(gold_of(row), row["entry_point"]))

    def _nl(self, b: Builder, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            feedback, code = row.get("refine_nl_feedback"), row[self.params.code]
            ok = bool(feedback and feedback.strip() and code)
            prompt = nl_refine_prompt(task=row["instruction"], code=row["attempt_code"] or "",
                                      error=row["attempt_feedback"] or "") if ok else None
            b.add(NL_VARIANT, "nl", row, prompt, nl_refine_completion(feedback, code) if ok else None,
                  reason="no_feedback", why="the teacher's answer held no FEEDBACK text")

    def _combined(self, b: Builder, rows: list[dict[str, Any]]) -> None:
        self._refine(b, "PERsD-combined", rows)
        if self.params.combined_target == "gold":
            self._gold(b, "PERsD-combined", first_per_task(rows))
        else:
            self._refined(b, "PERsD-combined", rows)
