"""SODA's question rows, and asking a model one thing about each of them.

A SODA frame holds two kinds of rows (``soda_kind``): ``question`` rows, one per question a cycle
works on, which the cycle's stages enrich column by column (the teacher's answers, the checks, the
judgements, the pair, the tier), and ``new_question`` rows, the questions the teacher wrote at the end
of a cycle for the next one. ``cycle`` is the cycle a row belongs to: a question row's cycle works on
it, a new question row's cycle wrote it (cycle k's new questions are cycle k+1's seeds).

``soda_seeds`` turns the source tasks into cycle 1's question rows; ``soda_cycles`` turns each cycle's
new questions into the next cycle's question rows the same way (:func:`question_rows`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Sequence

import polars as pl
from pydantic import Field

from compiler.llm.types import LLMRequest
from compiler.stages.base import (TASK_COLUMNS, Params, Stage, StageOutput, derive_id, empty_rejections,
                                  register, rejections)
from compiler.stages.generate import TEACHER_TEMPLATE, attach, render, with_signature_hint

if TYPE_CHECKING:
    from compiler.runner import StageContext

Tier = Literal["easy", "medium", "hard"]
TIERS: tuple[str, ...] = ("easy", "medium", "hard")
QUESTION, NEW_QUESTION = "question", "new_question"
# What a question row carries besides the task columns from the start of its cycle.
ORIGIN_COLUMNS = ("cycle", "soda_kind", "origin_tier", "origin_prompt")
QUESTION_READS = ("instruction", "entry_point", "header")


def question_text(row: dict[str, Any]) -> str:
    """The question as every SODA prompt and record shows it: the instruction, and the function to
    define when the task names one (the same hint ``teacher_answer`` gives)."""
    return render(TEACHER_TEMPLATE, with_signature_hint(row)).strip()


def question_rows(frame: pl.DataFrame, cycle: int) -> pl.DataFrame:
    """Question rows of ``cycle`` made from task rows or from new question rows: a new id derived
    from each (its parent), the task columns and the origin of the question."""
    ids = [derive_id(rid, "soda_question") for rid in frame["row_id"]]
    origin = [pl.col(c) if c in frame.columns else pl.lit(None, dtype=pl.String).alias(c)
              for c in ("origin_tier", "origin_prompt")]
    return frame.select(
        pl.Series("row_id", ids, dtype=pl.String),
        pl.concat_list(pl.col("row_id")).alias("parent_ids"),
        *[c for c in TASK_COLUMNS if c not in ("row_id", "parent_ids")],
        pl.lit(cycle, dtype=pl.Int64).alias("cycle"),
        pl.lit(QUESTION).alias("soda_kind"),
        *origin,
    )


def ask_each(frame: pl.DataFrame, ctx: "StageContext", role: str, prompts: Sequence[str], column: str,
             stage: str, *, temperature: float, max_tokens: int, top_p: float = 1.0,
             seed: int | None = None, model: str | None = None, part: str | None = None,
             completion: bool = False) -> StageOutput:
    """One request per row (its prompt as a user message, or as a raw prompt with ``completion``),
    the answers joined back as ``column`` with ``{column}_call``; failed requests drop their row
    with reason ``llm_failed``."""
    def request(row_id: str, prompt: str) -> LLMRequest:
        common = dict(temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=seed,
                      served_rows=(row_id,))
        return LLMRequest(prompt=prompt, **common) if completion else \
            LLMRequest(messages=(("user", prompt),), **common)
    requests = [request(rid, p) for rid, p in zip(frame["row_id"], prompts)]
    return attach(frame, ctx.generate(role, requests, model=model, part=part), column, stage)


@register
class SodaSeeds(Stage):
    """Cycle 1's questions (METHODS §3(b) S0): each source task becomes a question row (``soda_kind``
    ``question``, ``cycle`` 1, a new id whose parent is the task row), keeping the task columns;
    ``origin_tier`` and ``origin_prompt`` (the tier and prompt a later cycle's question came from)
    are null here. Tasks whose instruction is blank are dropped with reason ``empty_question``."""

    name = "soda_seeds"
    version = 1
    reads = ("instruction",)
    writes = ORIGIN_COLUMNS

    class Params(Params):
        cycle: int = Field(default=1, ge=1, description="the cycle these questions start (1 unless a "
                           "run continues from questions written elsewhere)")

    def run(self, frame: pl.DataFrame, ctx: "StageContext") -> StageOutput:
        blank = frame["instruction"].fill_null("").str.strip_chars() == ""
        dropped = rejections(frame.filter(blank), "empty_question", "the task has no instruction")
        return StageOutput(question_rows(frame.filter(~blank), self.params.cycle),
                           pl.concat([empty_rejections(), dropped]))


__all__ = ["SodaSeeds", "question_rows", "question_text", "ask_each"]
