"""``teacher_refine``: the teacher rectifies the student's failed attempts (METHODS §1(b) P3), and only
those: a passing attempt never costs a teacher call.

The first turn of the chat carries a gold solution: the task's reference (``gold: reference``), or
the teacher's own direct answer (``gold: teacher``, as PERsD's scripts do with ``--get-openai-gold``):
one request per task with a failed attempt, shaped exactly like ``teacher_answer``'s default request
(so a StanD compile on the same tasks and teacher shares its cache), recorded in the ledger as
``<stage>:gold``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Literal

import polars as pl
from pydantic import Field

from compiler.llm.types import LLMRequest
from compiler.stages.base import Params, Stage, StageOutput, derive_id, parent_link, register, rejections
from compiler.stages.filters import require_columns
from compiler.codeparse import extract_code, strip_main_guard
from compiler.stages.generate import TeacherAnswer, attach, request_for, with_signature_hint
from compiler.methods.persd.templates import Closeness, FeedbackKind, refinement_chat
from evals import codeinfo

if TYPE_CHECKING:
    from compiler.runner import StageContext

SAMPLE_ERROR = "AssertionError\nINPUT: (1, 2)\nOUTPUT: 2\nEXPECTED: 3"


def task_passes(frame: pl.DataFrame, passed: str) -> pl.Expr:
    """Per row: how many attempts of its task (in its round) passed."""
    keys = ["task_id", "round"] if "round" in frame.columns else ["task_id"]
    return pl.col(passed).fill_null(False).cast(pl.Int64).sum().over(keys)


@register
class TeacherRefine(Stage):
    """Sends each failed attempt to the teacher as PERsD's two-turn chat: turn 1 gives the task and
    the header and has the gold solution as the assistant's answer; turn 2 gives the incorrect code,
    the feedback and the rules, and asks for the rectified code. ``feedback``: ``auto`` (the
    execution error), ``nl`` (the teacher first writes FEEDBACK, then RECTIFIED CODE) or ``none``
    (no error shown); ``closeness``: ``v1`` (rewrite if badly wrong, else stay close), ``v0`` (no
    closeness rule), ``v2`` (stay closest to the incorrect code); ``repeat_task`` repeats TASK and
    HEADER after the error. Passing attempts are dropped with reason ``attempt_passed`` (no call);
    each failed attempt becomes a refinement row (parent: the attempt row) with
    ``refine_messages`` (the chat as JSON), ``refine_text``, ``refine_call`` and
    ``task_attempts_passed``, plus ``gold_code`` (the first turn's solution, the target of InpD) and
    ``gold_origin`` (``reference`` or ``teacher``). ``gold: teacher`` asks the teacher for the gold
    first (one cached request per task with a failed attempt, ledger stage ``<name>:gold``). Also
    drops ``no_gold`` (no reference, or the teacher's gold answer failed or held no code) and
    ``llm_failed``."""

    name = "teacher_refine"
    version = 2
    roles = ("teacher",)
    scope = "task"   # counts the passing attempts of each task
    reads = ("{code}", "{passed}", "{error}", "instruction", "reference_solution", "entry_point", "header")
    writes = ("task_attempts_passed", "gold_code", "gold_origin", "refine_messages", "refine_feedback_kind",
              "refine_text", "refine_call")

    class Params(Params):
        feedback: FeedbackKind = Field(default="auto", description="`auto` (execution error), `nl` "
                                       "(teacher writes feedback first) or `none`")
        closeness: Closeness = Field(default="v1", description="closeness rule: `v0` none, `v1` stay close "
                                     "unless badly wrong, `v2` closest to the incorrect code")
        repeat_task: bool = Field(default=False, description="repeat TASK/HEADER after the error (PERsD's format2)")
        gold: Literal["reference", "teacher"] = Field(
            default="reference", description="the first turn's solution (and InpD's target): the task's "
            "`reference`, or the `teacher`'s own direct answer (one cached call per task with a failed attempt)")
        temperature: float = Field(default=0.0, ge=0, description="teacher sampling temperature (PERsD used "
                                   "the API default, 1.0; 0 makes refinements reproducible)")
        top_p: float = Field(default=1.0, gt=0, le=1, description="nucleus sampling")
        max_tokens: int = Field(default=1024, ge=1, description="completion length limit")
        stop: list[str] = Field(default_factory=list, description="stop strings (e.g. the closing code "
                                "fence, so small local teachers stop after the code)")
        seed: int | None = Field(default=None, description="one fixed sampling seed for every request of "
                                 "this stage (default: a seed per request from the recipe's `seed`, the "
                                 "row and the sample index)")
        code: str = Field(default="attempt_code", description="column with the student's code")
        passed: str = Field(default="attempt_passed", description="boolean column: the attempt passed")
        error: str = Field(default="attempt_feedback", description="column with the execution feedback text")

    @classmethod
    def expected_requests(cls, params: "TeacherRefine.Params", frame: pl.DataFrame) -> dict[str, int] | None:
        """One request per failed attempt (plus, with ``gold: teacher``, one per task with one)."""
        if params.passed not in frame.columns:
            return None
        failed = frame.filter(~pl.col(params.passed).fill_null(False))
        golds = failed["task_id"].n_unique() if params.gold == "teacher" else 0
        return {"teacher": failed.height + golds}

    @classmethod
    def prior_requests(cls, params: "TeacherRefine.Params") -> dict[str, tuple[float, float, float]]:
        """Only failed attempts cost a call: none when all pass, all when none does (about half)."""
        gold = 1.0 if params.gold == "teacher" else 0.0
        return {"teacher": (0.0, 0.5 * (1 + gold), 1.0 + gold)}

    @classmethod
    def sample_requests(cls, params: "TeacherRefine.Params", tasks: pl.DataFrame) -> list[LLMRequest]:
        """Requests as for an attempt that repeats the gold with a typical error (prompt sizes for
        ``plan --estimate``)."""
        stage = cls(params)
        rows = tasks.filter(pl.col("reference_solution").is_not_null() & pl.col("entry_point").is_not_null())
        shaped = rows.with_columns(pl.col("reference_solution").alias(params.code),
                                   pl.col("reference_solution").alias("gold_code"),
                                   pl.lit(SAMPLE_ERROR).alias(params.error))
        return [stage._request(r) for r in stage._refinement_rows(shaped).iter_rows(named=True)]

    def run(self, frame: pl.DataFrame, ctx: "StageContext") -> StageOutput:
        p = self.params
        require_columns(frame, self.name, p.code, p.passed, p.error)
        marked = frame.with_columns(task_passes(frame, p.passed).alias("task_attempts_passed"))
        ok = pl.col(p.passed).fill_null(False)
        with_gold, no_gold = self._gold(marked.filter(~ok), ctx)
        failed = self._refinement_rows(with_gold)
        requests = [self._request(r) for r in failed.iter_rows(named=True)]
        out = attach(failed, ctx.generate("teacher", requests), "refine_text", self.name)
        dropped = pl.concat([
            rejections(marked.filter(ok), "attempt_passed", "the attempt passed its tests: no refinement needed"),
            no_gold, out.rejected])
        return StageOutput(out.frame.rename({"refine_text_call": "refine_call"}), dropped)

    def _gold(self, failed: pl.DataFrame, ctx: "StageContext") -> tuple[pl.DataFrame, pl.DataFrame]:
        """The failed attempts with ``gold_code``/``gold_origin``, and rejections of those without."""
        if self.params.gold == "reference":
            golds: list[str | None] = [r if r and r.strip() else None for r in failed["reference_solution"]]
            why = pl.lit("no gold solution for the teacher's first turn")
        else:
            golds, reasons = self._teacher_gold(failed, ctx)
            why = pl.Series("_why", reasons, dtype=pl.String)
        marked = failed.with_columns(pl.Series("gold_code", golds, dtype=pl.String),
                                     pl.lit(self.params.gold).alias("gold_origin"), why.alias("_why"))
        has = pl.col("gold_code").is_not_null()
        return marked.filter(has).drop("_why"), rejections(marked.filter(~has), "no_gold", pl.col("_why"))

    def _teacher_gold(self, failed: pl.DataFrame, ctx: "StageContext") -> tuple[list[str | None], list[str | None]]:
        """The teacher's direct answer for each failed attempt's task: ``teacher_answer``'s default
        request (identical for the attempts of one task, so sent once), its code extracted."""
        d = TeacherAnswer.Params()
        requests = [request_for(with_signature_hint(row), system=d.system, template=d.template,
                                temperature=d.temperature, top_p=d.top_p, max_tokens=d.max_tokens,
                                sample_index=0, seed=None) for row in failed.iter_rows(named=True)]
        golds, reasons = [], []
        for row, result in zip(failed.iter_rows(named=True), ctx.generate("teacher", requests, part="gold")):
            code = extract_code(result.text or "", entry_point=row["entry_point"]) if result.ok else None
            code = strip_main_guard(code) if code and code.strip() else None
            golds.append(code)
            reasons.append(None if code else f"the teacher's gold answer {'held no code' if result.ok else 'failed'}"
                           + ("" if result.ok else f": {result.error}"))
        return golds, reasons

    def _refinement_rows(self, frame: pl.DataFrame) -> pl.DataFrame:
        ids = [derive_id(rid, self.name) for rid in frame["row_id"]]
        messages = [json.dumps([{"role": r, "content": c} for r, c in self._chat(row)], ensure_ascii=False)
                    for row in frame.iter_rows(named=True)]
        return frame.with_columns(
            parent_link(),
            pl.Series("row_id", ids, dtype=pl.String),
            pl.Series("refine_messages", messages, dtype=pl.String),
            pl.lit(self.params.feedback).alias("refine_feedback_kind"),
        )

    def _chat(self, row: dict[str, Any]) -> list[tuple[str, str]]:
        p = self.params
        header = row.get("header") or codeinfo.function_header(row["reference_solution"] or row["gold_code"],
                                                               row["entry_point"]) or ""
        return refinement_chat(instruction=row["instruction"], header=header, gold=row["gold_code"],
                               code=row[p.code] or "", feedback=row[p.error] or "", kind=p.feedback,
                               closeness=p.closeness, repeat_task=p.repeat_task)

    def _request(self, row: dict[str, Any]) -> LLMRequest:
        p = self.params
        pairs = tuple((m["role"], m["content"]) for m in json.loads(row["refine_messages"]))
        return LLMRequest(messages=pairs, temperature=p.temperature, top_p=p.top_p, max_tokens=p.max_tokens,
                          stop=tuple(p.stop), seed=p.seed, served_rows=(row["row_id"],))
