"""LLM generation stages and the helpers every LLM stage shares: fan rows out into samples, send one
request per row through the cache and ledger, join the answers back, and turn failed requests into
rejections (never nulls)."""

from __future__ import annotations

import string
from typing import TYPE_CHECKING, Any, Sequence

import polars as pl
from pydantic import Field

from compiler.llm.types import LLMRequest, LLMResult
from compiler.stages.base import (Columns, Params, Stage, StageOutput, derive_id, parent_link, placeholders,
                                  register, rejections)

if TYPE_CHECKING:
    from compiler.runner import StageContext

TEACHER_SYSTEM = (
    "You are an expert Python programmer. Solve the task with a correct, complete and self-contained "
    "Python solution. Put the whole solution in a single ```python fenced code block."
)
TEACHER_TEMPLATE = "{instruction}{signature_hint}"
SIGNATURE_HINT = "\n\nYour solution must define the function `{entry_point}` with this signature:\n{header}"


class _SafeDict(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def render(template: str, row: dict[str, Any]) -> str:
    """Fill ``{column}`` placeholders from a row; unknown placeholders stay as written."""
    values = {k: ("" if v is None else v) for k, v in row.items()}
    return string.Formatter().vformat(template, (), _SafeDict(values))


def fan_out(frame: pl.DataFrame, n: int, stage: str, column: str) -> pl.DataFrame:
    """Each row becomes ``n`` rows (``column`` = 0..n-1) with new ids derived from the parent's."""
    samples = pl.DataFrame({column: list(range(n))}, schema={column: pl.Int64})
    out = frame.join(samples, how="cross")
    ids = [derive_id(rid, stage, k) for rid, k in zip(out["row_id"], out[column])]
    return out.with_columns(parent_link(), row_id=pl.Series(ids, dtype=pl.String))


def attach(frame: pl.DataFrame, results: Sequence[LLMResult], column: str, stage_name: str) -> StageOutput:
    """Join answers back as ``column`` (+ ``{column}_call``); failed requests become rejections
    with reason ``llm_failed``."""
    ok = pl.Series([r.ok for r in results], dtype=pl.Boolean)
    joined = frame.with_columns(
        pl.Series(column, [r.text if r.ok else None for r in results], dtype=pl.String),
        pl.Series(f"{column}_call", [r.call_id for r in results], dtype=pl.String),
        pl.Series("_error", [r.error for r in results], dtype=pl.String),
    )
    kept = joined.filter(ok).drop("_error")
    failed = joined.filter(~ok)
    return StageOutput(kept, rejections(failed, "llm_failed", pl.col("_error")))


def request_for(row: dict[str, Any], *, system: str | None, template: str, temperature: float,
                top_p: float, max_tokens: int, sample_index: int, seed: int | None,
                stop: Sequence[str] = ()) -> LLMRequest:
    messages = []
    if system:
        messages.append(("system", render(system, row)))
    messages.append(("user", render(template, row)))
    return LLMRequest(messages=tuple(messages), temperature=temperature, top_p=top_p,
                      max_tokens=max_tokens, sample_index=sample_index, seed=seed, stop=tuple(stop),
                      served_rows=(row["row_id"],))


def template_columns(*templates: str | None) -> tuple[str, ...]:
    """The row columns prompt templates read (``{signature_hint}`` reads entry_point and header)."""
    names = placeholders(*templates)
    hint = ("entry_point", "header") if "signature_hint" in names else ()
    return tuple(n for n in names if n != "signature_hint") + hint


def with_signature_hint(row: dict[str, Any]) -> dict[str, Any]:
    hint = SIGNATURE_HINT.format(**row) if row.get("entry_point") and row.get("header") else ""
    return {**row, "signature_hint": hint}


@register
class TeacherAnswer(Stage):
    """The teacher answers every task ``n`` times (StanD's gold, AMR-Evol's direct answer). Adds
    ``answer`` (the raw text), ``answer_sample`` and ``answer_call``; a request that fails for good
    drops its row with reason ``llm_failed``."""

    name = "teacher_answer"
    version = 1
    roles = ("teacher",)
    writes = ("answer", "answer_sample", "answer_call")

    class Params(Params):
        n: int = Field(default=1, ge=1, description="answers per task (each its own request and cache entry)")
        temperature: float = Field(default=0.0, ge=0, description="sampling temperature")
        top_p: float = Field(default=1.0, gt=0, le=1, description="nucleus sampling")
        max_tokens: int = Field(default=1024, ge=1, description="completion length limit")
        system: str = Field(default=TEACHER_SYSTEM, description="system message")
        template: str = Field(default=TEACHER_TEMPLATE, description="user message; {column} placeholders "
                              "are filled from the task row, {signature_hint} names the required function")
        seed: int | None = Field(default=None, description="one fixed sampling seed for every request of "
                                 "this stage (default: a seed per request from the recipe's `seed`, the "
                                 "row and the sample index)")

    @classmethod
    def columns(cls, params: "TeacherAnswer.Params") -> Columns:
        return Columns.of(params, reads=template_columns(params.system, params.template), writes=cls.writes)

    @classmethod
    def expected_requests(cls, params: "TeacherAnswer.Params", frame: pl.DataFrame) -> dict[str, int]:
        return {"teacher": params.n * frame.height}

    @classmethod
    def sample_requests(cls, params: "TeacherAnswer.Params", tasks: pl.DataFrame) -> list[LLMRequest]:
        """One request per task row as the stage would send it (for ``plan --estimate``)."""
        return [request_for(with_signature_hint(row), system=params.system, template=params.template,
                            temperature=params.temperature, top_p=params.top_p, max_tokens=params.max_tokens,
                            sample_index=0, seed=params.seed)
                for row in tasks.iter_rows(named=True)]

    def run(self, frame: pl.DataFrame, ctx: "StageContext") -> StageOutput:
        p = self.params
        rows = fan_out(frame, p.n, self.name, "answer_sample")
        requests = [
            request_for(with_signature_hint(row), system=p.system, template=p.template,
                        temperature=p.temperature, top_p=p.top_p, max_tokens=p.max_tokens,
                        sample_index=row["answer_sample"], seed=p.seed)
            for row in rows.iter_rows(named=True)
        ]
        return attach(rows, ctx.generate("teacher", requests), "answer", self.name)
