"""``student_attempt``: the student tries every task first (METHODS §1(b) P1), with PERsD's
completion prompt, and its code is cleaned up the way PERsD does it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import polars as pl
from pydantic import Field

from compiler.llm.types import LLMRequest
from compiler.stages.base import Params, Stage, StageOutput, derive_id, empty_rejections, parent_link, register, rejections
from compiler.stages.generate import attach
from compiler.methods.persd.extract import clean_attempt, prompt_code
from compiler.methods.persd.unit_tests import has_tests
from compiler.stages.sources import resolve_path
from evals.persd_prompts import text_to_code_prompt

if TYPE_CHECKING:
    from compiler.runner import StageContext

CHAT_INSTRUCTION = ("Complete the following Python function. Reply with the whole function in a single "
                    "```python code block.")
# Four at most (the OpenAI API's limit); the clean-up cuts at any other column-0 line anyway.
COMPLETION_STOPS = ("\ndef ", "\nclass ", "\nif __name__", "\nprint(")
CHAT_STOPS = ("\n```\n",)

@register
class StudentAttempt(Stage):
    """The student attempts each task ``n`` times with PERsD's prompt: the task as a docstring, a
    blank line, then the gold code up to the function header (``prompt_format: completion``, a raw
    continuation prompt for base students). ``prompt_format: chat`` presents the same prompt to
    instruct students as one user message (an instruction line, then the prompt in a ```python
    fence) and reads the fenced function from the answer. The program is cleaned as PERsD does
    (from the ``def`` line, cut at the first column-0 line, prompt imports put back). Each attempt
    is a new row (parent: the task row) with ``attempt_prompt``, ``attempt_text``, ``attempt_code``,
    ``attempt_call``, ``attempt_sample``, ``round`` and ``task_row_id``. ``model`` replaces the
    recipe's student (a checkpoint path, for later rounds). Drops ``no_header`` (no gold or header
    to prompt with), ``no_tests`` and ``llm_failed``."""

    name = "student_attempt"
    version = 2
    roles = ("student",)
    reads = ("instruction", "entry_point", "reference_solution", "header", "tests")
    writes = ("task_row_id", "round", "attempt_prompt", "attempt_sample", "attempt_text", "attempt_call",
              "attempt_code")

    class Params(Params):
        n: int = Field(default=1, ge=1, description="attempts per task (each its own request)")
        temperature: float = Field(default=0.3, ge=0, description="sampling temperature (PERsD: 0.3)")
        top_p: float = Field(default=0.95, gt=0, le=1, description="nucleus sampling (PERsD: 0.95)")
        max_tokens: int = Field(default=1024, ge=1, description="completion length limit (PERsD: 1024)")
        prompt_format: Literal["completion", "chat"] = Field(
            default="completion", description="`completion`: raw prompt (base students); `chat`: the same "
            "prompt in a user message, code read from the fenced answer (instruct students)")
        stop: list[str] | None = Field(default=None, description="stop strings (default: column-0 "
                                       "`def`/`class`/`if __name__`/`print(` for completion, a closing fence for chat)")
        seed: int | None = Field(default=None, description="one fixed sampling seed for every request of "
                                 "this stage (default: a seed per request from the recipe's `seed`, the "
                                 "row and the sample index)")
        round: int = Field(default=1, ge=1, description="the PERsD round these attempts belong to")
        model: str | None = Field(default=None, description="student model name or checkpoint path used "
                                  "instead of the recipe's `student.model` (relative paths: from the recipe)")

    @classmethod
    def expected_requests(cls, params: "StudentAttempt.Params", frame: pl.DataFrame) -> dict[str, int]:
        ready, _ = cls(params)._ready(frame)
        return {"student": params.n * ready.height}

    @classmethod
    def sample_requests(cls, params: "StudentAttempt.Params", tasks: pl.DataFrame) -> list[LLMRequest]:
        """One request per task that can be attempted (for ``plan --estimate``)."""
        stage = cls(params.model_copy(update={"n": 1}))
        ready, _ = stage._ready(tasks)
        return [stage._request(r) for r in stage._fan_out(ready).iter_rows(named=True)]

    def run(self, frame: pl.DataFrame, ctx: "StageContext") -> StageOutput:
        ready, dropped = self._ready(frame)
        rows = self._fan_out(ready)
        results = ctx.generate("student", [self._request(r) for r in rows.iter_rows(named=True)],
                               model=self._model(ctx))
        out = attach(rows, results, "attempt_text", self.name)
        cleaned = out.frame.with_columns(pl.struct("_code", "attempt_text", "entry_point").map_elements(
            self._clean, return_dtype=pl.String).alias("attempt_code")).drop("_code")
        cleaned = cleaned.rename({"attempt_text_call": "attempt_call"})
        return StageOutput(cleaned, pl.concat([dropped, out.rejected]))

    def _ready(self, frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Tasks that can be attempted (with ``_code``, the prompt's code), and rejections of the rest."""
        codes = [prompt_code(r) for r in frame.iter_rows(named=True)]
        tests = [has_tests(t) for t in frame["tests"]]
        framed = frame.with_columns(pl.Series("_code", codes, dtype=pl.String),
                                    pl.Series("_tests", tests, dtype=pl.Boolean))
        no_header = framed.filter(pl.col("_code").is_null())
        no_tests = framed.filter(pl.col("_code").is_not_null() & ~pl.col("_tests"))
        dropped = pl.concat([empty_rejections(),
                             rejections(no_header, "no_header", "no gold code or header to prompt with"),
                             rejections(no_tests, "no_tests", "the task has no tests to run attempts on")])
        return framed.filter(pl.col("_code").is_not_null() & pl.col("_tests")).drop("_tests"), dropped

    def _fan_out(self, frame: pl.DataFrame) -> pl.DataFrame:
        p = self.params
        out = frame.join(pl.DataFrame({"attempt_sample": list(range(p.n))}, schema={"attempt_sample": pl.Int64}),
                         how="cross")
        ids = [derive_id(rid, self.name, p.round, k) for rid, k in zip(out["row_id"], out["attempt_sample"])]
        prompts = [text_to_code_prompt(i, c) for i, c in zip(out["instruction"], out["_code"])]
        return out.with_columns(
            pl.col("row_id").alias("task_row_id"),
            parent_link(),
            pl.Series("row_id", ids, dtype=pl.String),
            pl.lit(p.round, dtype=pl.Int64).alias("round"),
            pl.Series("attempt_prompt", prompts, dtype=pl.String),
        )

    def _request(self, row: dict[str, Any]) -> LLMRequest:
        p = self.params
        stop = tuple(p.stop) if p.stop is not None else (CHAT_STOPS if p.prompt_format == "chat" else COMPLETION_STOPS)
        common = dict(temperature=p.temperature, top_p=p.top_p, max_tokens=p.max_tokens, stop=stop,
                      seed=p.seed, sample_index=row["attempt_sample"], served_rows=(row["row_id"],))
        if p.prompt_format == "chat":
            text = f"{CHAT_INSTRUCTION}\n\n```python\n{row['attempt_prompt']}```"
            return LLMRequest(messages=(("user", text),), **common)
        return LLMRequest(prompt=row["attempt_prompt"], **common)

    def _clean(self, row: dict[str, Any]) -> str:
        return clean_attempt(row["_code"], row["attempt_text"] or "", row["entry_point"],
                             chat=self.params.prompt_format == "chat")

    def _model(self, ctx: "StageContext") -> str | None:
        model = self.params.model
        if model is None:
            return None
        local = resolve_path(model, ctx.base_dir)
        return str(local) if local.exists() else model


__all__ = ["StudentAttempt"]
