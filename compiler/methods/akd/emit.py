"""``emit_akd``: AKD's knowledge-distillation records (METHODS §4(b) K3): the student-side prompt and
the teacher's answer as a TRL ``prompt``/``completion`` pair, plus the teacher's side — its own
prompt, for training that scores the teacher on it, and its top-k log-probabilities, for training
without its weights."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import polars as pl
from pydantic import Field

from compiler.methods.akd.teacher import TOPK
from compiler.stages.base import Columns, Params, Stage, StageOutput, derive_id, parent_link, register

if TYPE_CHECKING:
    from compiler.runner import StageContext

RECORD_SCHEMA: dict[str, Any] = {
    "row_id": pl.String, "parent_ids": pl.List(pl.String), "task_id": pl.String, "source": pl.String,
    "variant": pl.String, "prompt": pl.String, "completion": pl.String, "teacher_prompt": pl.String,
    "teacher_topk": TOPK,
}


def fenced(code: str) -> str:
    return f"```python\n{code.rstrip()}\n```"


@register
class EmitAkd(Stage):
    """Writes one KD record per kept answer: ``prompt`` (the student-side prompt), ``completion`` (with
    ``completion: answer``, the teacher's text exactly as generated; with ``code``, only its code —
    fenced for chat answers), ``teacher_prompt`` (the teacher-side prompt; null with
    ``teacher_prompt: false``) and ``teacher_topk`` (the captured top-k log-probabilities; kept only
    while the completion is the generated text they belong to, else null), labelled ``variant``."""

    name = "emit_akd"
    version = 1
    scope = "row"

    class Params(Params):
        completion: Literal["answer", "code"] = Field(
            default="answer", description="`answer`: the teacher's text as generated (what its logits and "
            "log-probabilities score); `code`: the code alone")
        teacher_prompt: bool = Field(default=True, description="keep the teacher-side prompt in each record")
        topk: bool = Field(default=True, description="keep the teacher's top-k log-probabilities when captured")
        variant: str = Field(default="AKD", min_length=1, description="variant name of the records")

    @classmethod
    def columns(cls, params: "EmitAkd.Params") -> Columns:
        reads = ("task_id", "source", "student_prompt", "teacher_prompt", "teacher_text", "teacher_code",
                 "teacher_format", "teacher_topk")
        return Columns.of(params, reads=reads, writes=tuple(RECORD_SCHEMA), replaces=True)

    def run(self, frame: pl.DataFrame, ctx: "StageContext") -> StageOutput:
        p = self.params
        rows = list(frame.iter_rows(named=True))
        completions = [self._completion(r) for r in rows]
        verbatim = [c == r["teacher_text"] for c, r in zip(completions, rows)]
        topk = [r["teacher_topk"] if p.topk and same else None for r, same in zip(rows, verbatim)]
        records = frame.select(
            pl.Series("row_id", [derive_id(r, self.name, p.variant) for r in frame["row_id"]], dtype=pl.String),
            parent_link(), pl.col("task_id"), pl.col("source"), pl.lit(p.variant).alias("variant"),
            pl.col("student_prompt").alias("prompt"),
            pl.Series("completion", completions, dtype=pl.String),
            (pl.col("teacher_prompt") if p.teacher_prompt else pl.lit(None, dtype=pl.String)).alias("teacher_prompt"),
            pl.Series("teacher_topk", topk, dtype=TOPK))
        return StageOutput(records)

    def _completion(self, row: dict[str, Any]) -> str:
        if self.params.completion == "answer":
            return row["teacher_text"]
        code = row["teacher_code"]
        return code if row["teacher_format"] == "completion" else fenced(code)
