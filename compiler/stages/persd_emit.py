"""``emit_persd``: PERsD's five training sets as named variants of one corpus version (METHODS
§1(b) P5): prompt/completion records whose completion is the function body alone, because the
prompt ends with the function header."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Literal

import polars as pl
from pydantic import Field

from compiler.codeparse import split_function
from compiler.stages.base import Params, Stage, StageOutput, derive_id, register
from compiler.stages.persd_extract import prompt_code
from evals.persd_prompts import header_of, refine_prompt, text_to_code_prompt

if TYPE_CHECKING:
    from compiler.runner import StageContext

Variant = Literal["StanD", "InpD", "PERsD", "PERsD-refine", "PERsD-combined"]
VARIANTS: tuple[str, ...] = ("StanD", "InpD", "PERsD", "PERsD-refine", "PERsD-combined")
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

    def add(self, variant: str, part: str, row: dict[str, Any], prompt: str | None, completion: str | None) -> None:
        if prompt is None or completion is None:
            self.rejected.append({"row_id": row["row_id"], "task_id": row["task_id"], "reason": "unsplittable",
                                  "detail": f"{variant}: the function header could not be separated from its body"})
            return
        self.records.append({
            "row_id": derive_id(row["row_id"], self.stage, variant, part), "parent_ids": [row["row_id"]],
            "task_id": row["task_id"], "source": row["source"], "variant": variant,
            "prompt": prompt, "completion": completion, "round": row.get("round"),
        })


def first_per_task(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    return [r for r in rows if not (r["task_id"] in seen or seen.add(r["task_id"]))]


@register
class EmitPersd(Stage):
    """Writes PERsD's training sets as variants of one corpus (``variant`` column), each record a
    ``prompt``/``completion`` pair whose completion is a function body: ``StanD`` (every task of
    ``tasks_from``: task prompt → gold body), ``InpD`` (each task with an accepted refinement, once:
    task prompt → gold body), ``PERsD`` (each accepted refinement: task prompt → refined body),
    ``PERsD-refine`` (each accepted refinement: the refinement prompt with the task, the student's
    code and its error → refined body) and ``PERsD-combined`` (the PERsD-refine records plus
    text-to-code records whose target is the gold body, once per task, or the refined body, per
    ``combined_target``). The task prompt is the task as a docstring, a blank line, then the gold
    code up to the function header. Records link to the refinement row (StanD: the task row).
    Rows whose function cannot be split are dropped with reason ``unsplittable``."""

    name = "emit_persd"
    version = 1

    class Params(Params):
        variants: list[Variant] = Field(default_factory=lambda: list(VARIANTS), min_length=1,
                                        description="the training sets to write")
        combined_target: Literal["gold", "refinement"] = Field(
            default="gold", description="text-to-code target in PERsD-combined (PERsD's code: gold)")
        tasks_from: str | None = Field(default=None, description="the earlier stage whose rows are StanD's "
                                       "tasks (default: the `synthesize_tests` stage, else the sources)")
        code: str = Field(default="refine_code", description="column with the refined code")

    def run(self, frame: pl.DataFrame, ctx: "StageContext") -> StageOutput:
        builder = Builder(self.name)
        rows = list(frame.iter_rows(named=True))
        makers: dict[str, Callable[[], None]] = {
            "StanD": lambda: self._stand(builder, self._tasks(ctx)),
            "InpD": lambda: self._gold(builder, "InpD", first_per_task(rows)),
            "PERsD": lambda: self._refined(builder, "PERsD", rows),
            "PERsD-refine": lambda: self._refine(builder, "PERsD-refine", rows),
            "PERsD-combined": lambda: self._combined(builder, rows),
        }
        for variant in self.params.variants:
            makers[variant]()
        rejected = pl.DataFrame(builder.rejected, schema={"row_id": pl.String, "task_id": pl.String,
                                                           "reason": pl.String, "detail": pl.String})
        return StageOutput(pl.DataFrame(builder.records, schema=RECORD_SCHEMA), rejected)

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
            b.add(variant, "gold", row, task_prompt(row), body(row["reference_solution"], row["entry_point"]))

    def _refined(self, b: Builder, variant: str, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            b.add(variant, "refined", row, task_prompt(row), body(row[self.params.code], row["entry_point"]))

    def _refine(self, b: Builder, variant: str, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            b.add(variant, "refine", row, student_refine_prompt(row), body(row[self.params.code], row["entry_point"]))

    def _combined(self, b: Builder, rows: list[dict[str, Any]]) -> None:
        self._refine(b, "PERsD-combined", rows)
        if self.params.combined_target == "gold":
            self._gold(b, "PERsD-combined", first_per_task(rows))
        else:
            self._refined(b, "PERsD-combined", rows)
