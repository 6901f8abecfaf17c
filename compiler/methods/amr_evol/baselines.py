"""The response-side baselines AMR-Evol is compared with (METHODS §2(c)): chain of thought
(``cot_answer``) and AnsRepair (``teacher_tests``, then ``repair_answer``). Direct distillation is the
shared ``teacher_answer``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import polars as pl
from pydantic import Field

from compiler.codeparse import extract_code, strip_main_guard
from compiler.llm.types import LLMRequest
from compiler.methods.amr_evol.selftest import teacher_test, tests_request, verdicts
from compiler.methods.amr_evol.templates import COT_SYSTEM, COT_TEMPLATE, REPAIR, REPAIR_SYSTEM
from compiler.stages.base import Columns, Params, Stage, StageOutput, derive_id, empty_rejections, register, rejections
from compiler.stages.generate import TeacherAnswer, attach

if TYPE_CHECKING:
    from compiler.runner import StageContext


@register
class CotAnswer(TeacherAnswer):
    """The chain-of-thought baseline: ``teacher_answer`` with a one-shot prompt asking to reason step by
    step before the final code (T=0). Writes ``answer``, ``answer_sample`` and ``answer_call`` like it."""

    name = "cot_answer"
    version = 1

    class Params(TeacherAnswer.Params):
        system: str = Field(default=COT_SYSTEM, description="system message with the one-shot example")
        template: str = Field(default=COT_TEMPLATE, description="user message; {column} placeholders are filled "
                              "from the task row, {signature_hint} names the required function")
        max_tokens: int = Field(default=3000, ge=1, description="completion length limit (AMR-Evol: 3000)")


@register
class TeacherTests(Stage):
    """AnsRepair's first step: the teacher writes a test function for each question and its answer's
    ``code`` (one-shot, T=0), and the code runs against it in the sandbox. Adds ``repair_test_code``,
    ``repair_test_passed`` (None when the teacher wrote no usable test) and ``repair_test_status``.
    Drops nothing."""

    name = "teacher_tests"
    version = 1
    roles = ("teacher",)
    sandbox = True
    writes = ("repair_test_code", "repair_test_passed", "repair_test_status")

    class Params(Params):
        code: str = Field(default="code", description="column with the answer's code")
        max_tokens: int = Field(default=1024, ge=1, description="completion length limit")
        cpu_seconds: float = Field(default=5.0, gt=0, description="CPU-time limit of a test run")

    @classmethod
    def columns(cls, params: "TeacherTests.Params") -> Columns:
        return Columns.of(params, reads=("instruction", "{code}"), writes=cls.writes)

    @classmethod
    def expected_requests(cls, params: "TeacherTests.Params", frame: pl.DataFrame) -> dict[str, int]:
        return {"teacher": frame.height}

    def run(self, frame: pl.DataFrame, ctx: "StageContext") -> StageOutput:
        p = self.params
        rows = list(frame.iter_rows(named=True))
        answers = ctx.generate("teacher", [tests_request(r["row_id"], r["instruction"], r[p.code] or "",
                                                         max_tokens=p.max_tokens) for r in rows])
        tests = [teacher_test(a.text if a.ok else None, r[p.code] or "", p.cpu_seconds) for r, a in zip(rows, answers)]
        labels = verdicts(tests, ctx.execute([t.job for t in tests if t.job is not None]))
        return StageOutput(frame.with_columns(
            pl.Series("repair_test_code", [t.code for t in tests], dtype=pl.String),
            pl.Series("repair_test_passed", [v[0] for v in labels], dtype=pl.Boolean),
            pl.Series("repair_test_status", [v[1] for v in labels], dtype=pl.String)))


@register
class RepairAnswer(Stage):
    """AnsRepair's second step: each answer whose teacher test failed goes back to the teacher with the
    question and the wrong code, and its corrected answer replaces it (a new row; parent: the failed
    one). ``repaired_answer`` holds the final answer (the original when its test passed or none was
    written), ``repaired`` says which, ``repaired_code`` its code. Drops ``llm_failed`` and ``no_code``
    (a correction with no code)."""

    name = "repair_answer"
    version = 1
    roles = ("teacher",)
    writes = ("repaired_answer", "repaired_code", "repaired", "repair_call")

    class Params(Params):
        code: str = Field(default="code", description="column with the answer's code")
        answer: str = Field(default="answer", description="column with the answer's text")
        max_tokens: int = Field(default=3000, ge=1, description="completion length limit")
        system: str = Field(default=REPAIR_SYSTEM, description="system message with the one-shot example")
        template: str = Field(default=REPAIR, description="user message; {instruction} and {code} are filled in")

    @classmethod
    def columns(cls, params: "RepairAnswer.Params") -> Columns:
        return Columns.of(params, reads=("instruction", "{code}", "{answer}", "repair_test_passed"), writes=cls.writes)

    @classmethod
    def expected_requests(cls, params: "RepairAnswer.Params", frame: pl.DataFrame) -> dict[str, int] | None:
        if "repair_test_passed" not in frame.columns:
            return None
        return {"teacher": int((frame["repair_test_passed"] == False).sum())}  # noqa: E712

    def run(self, frame: pl.DataFrame, ctx: "StageContext") -> StageOutput:
        p = self.params
        failed = pl.col("repair_test_passed").eq(False).fill_null(False)
        keep = frame.filter(~failed).with_columns(pl.col(p.answer).alias("repaired_answer"),
                                                  pl.col(p.code).alias("repaired_code"), pl.lit(False).alias("repaired"),
                                                  pl.lit(None, dtype=pl.String).alias("repair_call"))
        todo = frame.filter(failed)
        todo = todo.with_columns(pl.concat_list(pl.col("row_id")).alias("parent_ids"),
                                 pl.Series("row_id", [derive_id(r, self.name) for r in todo["row_id"]], dtype=pl.String))
        fixed = attach(todo, ctx.generate("teacher", [self._request(r) for r in todo.iter_rows(named=True)]),
                       "repaired_answer", self.name)
        codes = [extract_code(t or "") for t in fixed.frame["repaired_answer"]]
        done = fixed.frame.rename({"repaired_answer_call": "repair_call"}).with_columns(
            pl.Series("repaired_code", [strip_main_guard(c) if c and c.strip() else None for c in codes], dtype=pl.String),
            pl.lit(True).alias("repaired"))
        no_code = done.filter(pl.col("repaired_code").is_null())
        out = pl.concat([keep, done.filter(pl.col("repaired_code").is_not_null()).select(keep.columns)])
        order = frame.select(pl.col("row_id").alias("_orig")).with_row_index("_order")
        out = out.with_columns(pl.when(pl.col("repaired")).then(pl.col("parent_ids").list.first())
                               .otherwise(pl.col("row_id")).alias("_orig")).join(order, on="_orig").sort("_order")
        return StageOutput(out.drop("_orig", "_order"), pl.concat([empty_rejections(), fixed.rejected,
                                                                    rejections(no_code, "no_code", "no code in the repair")]))

    def _request(self, row: dict[str, Any]) -> LLMRequest:
        p = self.params
        user = p.template.format(instruction=row["instruction"].strip(), code=(row[p.code] or "").rstrip() + "\n")
        return LLMRequest(messages=(("system", p.system), ("user", user)), temperature=0.0, max_tokens=p.max_tokens,
                          served_rows=(row["row_id"],))
