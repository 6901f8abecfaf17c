"""``student_answer`` and ``pass_rate``: the student's side of SODA's multi-view feedback (METHODS §3(b)
S2). The student is the recipe's ``student:`` model on any backend, or the checkpoint of the current
cycle (``model``, which ``soda_cycles`` sets for later cycles). It answers each question as its
training records will ask it (the question as one user message, or as a raw prompt for a student
without a chat template); the answer is then judged and checked like any other.

Beyond the paper, ``pass_rate`` samples the student ``k`` times on the questions whose task has tests
and runs the samples against them in the same sandbox: a third view for ``tier``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import polars as pl
from pydantic import Field

from compiler.codeparse import extract_code, strip_main_guard
from compiler.llm.types import LLMRequest
from compiler.methods.soda.questions import QUESTION_READS, ask_each, question_text
from compiler.stages.base import Params, Stage, StageOutput, empty_rejections, register, rejections
from compiler.stages.sources import resolve_path
from evals.sandbox.types import Job, Limits, TestSpec

if TYPE_CHECKING:
    from compiler.runner import StageContext


def student_prompt(row: dict[str, Any], prompt_format: str) -> str:
    """The question as the student sees it (raw prompts end with a blank line to answer after)."""
    text = question_text(row)
    return text if prompt_format == "chat" else text + "\n\n"


def checkpoint(model: str | None, ctx: "StageContext") -> str | None:
    """The model to ask instead of the recipe's student: a local path (relative to the recipe) when
    one exists there, else the name as given."""
    if model is None:
        return None
    local = resolve_path(model, ctx.base_dir)
    return str(local) if local.exists() else model


def has_tests(spec_json: str | None) -> bool:
    if not spec_json:
        return False
    spec = TestSpec.from_json(spec_json)
    return spec.style != "run" and spec.n_tests > 0


class StudentParams(Params):
    temperature: float = Field(default=0.0, ge=0, description="sampling temperature (METHODS §3(h)6: greedy)")
    top_p: float = Field(default=1.0, gt=0, le=1, description="nucleus sampling")
    max_tokens: int = Field(default=1024, ge=1, description="completion length limit")
    prompt_format: Literal["chat", "completion"] = Field(
        default="chat", description="`chat`: the question as one user message; `completion`: as a raw "
        "prompt (a student without a chat template)")
    model: str | None = Field(default=None, description="student checkpoint used instead of the recipe's "
                              "`student.model` (a path relative to the recipe, or a model name)")
    seed: int | None = Field(default=None, description="one fixed sampling seed for every request of this "
                             "stage (default: from the recipe's `seed`, the row and the sample index)")


@register
class StudentAnswer(Stage):
    """The student answers each question once (greedy by default, METHODS §3(h)6), with the question
    as its training records show it. Adds ``student_text``, ``student_call`` and ``student_model``
    (the checkpoint asked, or the recipe's student); drops ``llm_failed``."""

    name = "student_answer"
    version = 1
    roles = ("student",)
    reads = QUESTION_READS
    writes = ("student_text", "student_call", "student_model")
    Params = StudentParams

    @classmethod
    def expected_requests(cls, params: StudentParams, frame: pl.DataFrame) -> dict[str, int]:
        return {"student": frame.height}

    @classmethod
    def sample_requests(cls, params: StudentParams, tasks: pl.DataFrame) -> list[LLMRequest]:
        return [LLMRequest(messages=(("user", student_prompt(r, "chat")),), max_tokens=params.max_tokens)
                for r in tasks.iter_rows(named=True)]

    def run(self, frame: pl.DataFrame, ctx: "StageContext") -> StageOutput:
        p = self.params
        model = checkpoint(p.model, ctx)
        prompts = [student_prompt(r, p.prompt_format) for r in frame.iter_rows(named=True)]
        out = ask_each(frame, ctx, "student", prompts, "student_text", self.name, temperature=p.temperature,
                       top_p=p.top_p, max_tokens=p.max_tokens, seed=p.seed, model=model,
                       completion=p.prompt_format == "completion")
        answered = out.frame.rename({"student_text_call": "student_call"}).with_columns(
            pl.lit(model or ctx.recipe.student.model).alias("student_model"))
        return StageOutput(answered, out.rejected)


@register
class PassRate(Stage):
    """For each question whose task has tests, the student answers ``k`` more times (sampled) and
    each answer's Python code runs against the tests in the sandbox. Adds ``pass_rate`` (passing
    samples / ``k``; null without tests), ``pass_passed`` and ``pass_samples``. A sample without code
    fails. A question whose sample requests fail for good is dropped with reason ``llm_failed``."""

    name = "pass_rate"
    version = 1
    roles = ("student",)
    sandbox = True
    reads = (*QUESTION_READS, "tests")
    writes = ("pass_rate", "pass_passed", "pass_samples")

    class Params(StudentParams):
        k: int = Field(default=5, ge=1, description="samples per question with tests")
        temperature: float = Field(default=0.8, ge=0, description="sampling temperature of the samples")
        top_p: float = Field(default=0.95, gt=0, le=1, description="nucleus sampling")
        cpu_seconds: float = Field(default=5.0, gt=0, description="CPU-time limit per program")

    @classmethod
    def expected_requests(cls, params: "PassRate.Params", frame: pl.DataFrame) -> dict[str, int]:
        return {"student": params.k * sum(1 for t in frame["tests"] if has_tests(t))}

    @classmethod
    def prior_requests(cls, params: "PassRate.Params") -> dict[str, tuple[float, float, float]]:
        return {"student": (0.0, float(params.k) / 2, float(params.k))}

    def run(self, frame: pl.DataFrame, ctx: "StageContext") -> StageOutput:
        p = self.params
        tested = [has_tests(t) for t in frame["tests"]]
        rows = [r for r, t in zip(frame.iter_rows(named=True), tested) if t]
        requests = [self._request(r, j) for r in rows for j in range(p.k)]
        results = ctx.generate("student", requests, model=checkpoint(p.model, ctx))
        failed = {rows[i // p.k]["row_id"] for i, r in enumerate(results) if not r.ok}
        limits = Limits(cpu_seconds=p.cpu_seconds)
        jobs = [Job(code=self._code(res.text or "", rows[i // p.k]), limits=limits,
                    tests=TestSpec.from_json(rows[i // p.k]["tests"])) for i, res in enumerate(results)]
        passed = [r.passed for r in ctx.execute(jobs)]
        counts = {row["row_id"]: sum(passed[i * p.k:(i + 1) * p.k]) for i, row in enumerate(rows)}
        return self._attach(frame, counts, failed)

    def _request(self, row: dict[str, Any], sample: int) -> LLMRequest:
        p = self.params
        prompt = student_prompt(row, p.prompt_format)
        common = dict(temperature=p.temperature, top_p=p.top_p, max_tokens=p.max_tokens, seed=p.seed,
                      sample_index=sample, served_rows=(row["row_id"],))
        if p.prompt_format == "completion":
            return LLMRequest(prompt=prompt, **common)
        return LLMRequest(messages=(("user", prompt),), **common)

    def _code(self, text: str, row: dict[str, Any]) -> str:
        code = extract_code(text, entry_point=row.get("entry_point"))
        return strip_main_guard(code) if code and code.strip() else ""

    def _attach(self, frame: pl.DataFrame, counts: dict[str, int], failed: set[str]) -> StageOutput:
        k = self.params.k
        ids = frame["row_id"].to_list()
        marked = frame.with_columns(
            pl.Series("pass_rate", [counts[i] / k if i in counts else None for i in ids], dtype=pl.Float64),
            pl.Series("pass_passed", [counts.get(i) for i in ids], dtype=pl.Int64),
            pl.Series("pass_samples", [k if i in counts else 0 for i in ids], dtype=pl.Int64))
        lost = pl.col("row_id").is_in(list(failed))
        dropped = rejections(marked.filter(lost), "llm_failed", "a sample request of the pass rate failed")
        return StageOutput(marked.filter(~lost), pl.concat([empty_rejections(), dropped]))
