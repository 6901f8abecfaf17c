"""``teacher_correct`` and ``teacher_faulty``: SODA's correct-and-fault knowledge (METHODS §3(b) S1,
§3(i)): for each question the teacher writes a correct answer (prompt A) and a deliberately faulty one
(prompt B, with the error types it must contain). Both are kept as the full Markdown text: the
correct one is the SFT target and the chosen answer of the preference pair, the faulty one its
rejected answer."""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl
from pydantic import Field, field_validator

from compiler.llm.types import LLMRequest
from compiler.methods.soda.questions import QUESTION_READS, ask_each, question_text
from compiler.methods.soda.templates import ERROR_TYPES, ErrorType, correct_prompt, faulty_prompt
from compiler.stages.base import Params, Stage, StageOutput, register

if TYPE_CHECKING:
    from compiler.runner import StageContext


class AnswerParams(Params):
    temperature: float = Field(default=0.0, ge=0, description="sampling temperature")
    top_p: float = Field(default=1.0, gt=0, le=1, description="nucleus sampling")
    max_tokens: int = Field(default=1024, ge=1, description="completion length limit")
    seed: int | None = Field(default=None, description="one fixed sampling seed for every request of this "
                             "stage (default: a seed per request from the recipe's `seed` and the row)")


class _TeacherStage(Stage):
    roles = ("teacher",)
    column: str

    def prompt(self, row: dict) -> str:
        raise NotImplementedError

    @classmethod
    def expected_requests(cls, params: AnswerParams, frame: pl.DataFrame) -> dict[str, int]:
        return {"teacher": frame.height}

    @classmethod
    def sample_requests(cls, params: AnswerParams, tasks: pl.DataFrame) -> list[LLMRequest]:
        stage = cls(params)
        return [LLMRequest(messages=(("user", stage.prompt(r)),), max_tokens=params.max_tokens)
                for r in tasks.iter_rows(named=True)]

    def run(self, frame: pl.DataFrame, ctx: "StageContext") -> StageOutput:
        p = self.params
        prompts = [self.prompt(r) for r in frame.iter_rows(named=True)]
        out = ask_each(frame, ctx, "teacher", prompts, self.column, self.name, temperature=p.temperature,
                       top_p=p.top_p, max_tokens=p.max_tokens, seed=p.seed)
        calls = {f"{self.column}_call": self.column.replace("_text", "_call")}
        return StageOutput(self.finish(out.frame.rename(calls)), out.rejected)

    def finish(self, frame: pl.DataFrame) -> pl.DataFrame:
        return frame


@register
class TeacherCorrect(_TeacherStage):
    """The teacher's correct answer to each question with SODA's prompt A (no system message: the
    instruction, then ``#Given Instruction#:`` with the question and ``#Response#:``). Adds
    ``correct_text`` (the whole answer) and ``correct_call``; a request that fails for good drops its
    question with reason ``llm_failed``."""

    name = "teacher_correct"
    version = 1
    column = "correct_text"
    reads = QUESTION_READS
    writes = ("correct_text", "correct_call")
    Params = AnswerParams

    def prompt(self, row: dict) -> str:
        return correct_prompt(question_text(row))


@register
class TeacherFaulty(_TeacherStage):
    """The teacher's faulty answer to each question with SODA's prompt B: the solution must contain
    at least one of ``error_types`` (each listed with its definition and an example; default all
    five: Syntax, Logical, Type, Name and Timeout Error), must not explain its errors and must not
    reveal that it is incorrect. Adds ``faulty_text``, ``faulty_call`` and ``faulty_types_asked``;
    drops ``llm_failed``."""

    name = "teacher_faulty"
    version = 1
    column = "faulty_text"
    reads = QUESTION_READS
    writes = ("faulty_text", "faulty_call", "faulty_types_asked")

    class Params(AnswerParams):
        error_types: list[ErrorType] = Field(default_factory=lambda: list(ERROR_TYPES), min_length=1,
                                             description="the error types the faulty answer must contain "
                                             "at least one of (METHODS §3(i): all five)")

        @field_validator("error_types")
        @classmethod
        def _once_each(cls, value: list[str]) -> list[str]:
            if len(set(value)) != len(value):
                raise ValueError("each error type may be named once")
            return value

    def prompt(self, row: dict) -> str:
        return faulty_prompt(question_text(row), self.params.error_types)

    def finish(self, frame: pl.DataFrame) -> pl.DataFrame:
        asked = pl.Series("faulty_types_asked", [list(self.params.error_types)] * frame.height,
                          dtype=pl.List(pl.String))
        return frame.with_columns(asked)
