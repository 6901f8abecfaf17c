"""``judge``: SODA's model-based view (METHODS §3(b) S2, §3(i)): the recipe's ``judge:`` model grades an
answer with the 6-point rubric of five rules. Both output shapes are read (:mod:`.parse`); a
judgement that is neither is a rejection row ``judge_unparsed`` whose detail keeps the raw text, never
a zero."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import polars as pl
from pydantic import Field

from compiler.llm.types import LLMRequest
from compiler.methods.soda.parse import Judgement, Unparsed, parse_judgement
from compiler.methods.soda.questions import QUESTION_READS, ask_each, question_text
from compiler.methods.soda.templates import judge_prompt
from compiler.stages.base import Params, Stage, StageOutput, register, rejections

if TYPE_CHECKING:
    from compiler.runner import StageContext


@register
class Judge(Stage):
    """The judge grades the answer in ``code`` (the whole answer text) for each question with SODA's
    rubric: Basic Functionality (2 points), Boundary Check, Requirement Coverage, Readability &
    Documentation and Coding Practices (1 point each), the question, code and rubric each closed by
    its end marker. ``output: rules`` asks for ``Code Analysis:`` then ``Score:`` with Rule 1 to 5;
    ``output: json`` for ``{"score", "justification"}`` (an earlier iteration of the authors' prompt).
    Either shape is accepted in the answer. Adds ``{prefix}_score`` (the total, 0-6, half points
    kept), ``{prefix}_rule_scores`` (the five rule scores; null for a JSON answer),
    ``{prefix}_judge_shape``, ``{prefix}_judgement`` (the raw answer) and ``{prefix}_judge_call``.
    Drops ``judge_unparsed`` (detail: what was wrong, then the raw answer) and ``llm_failed``."""

    name = "judge"
    version = 1
    roles = ("judge",)
    reads = (*QUESTION_READS, "{code}")
    writes = ("{prefix}_score", "{prefix}_rule_scores", "{prefix}_judge_shape", "{prefix}_judgement",
              "{prefix}_judge_call")

    class Params(Params):
        code: str = Field(default="student_text", description="column holding the answer to grade")
        prefix: str = Field(default="student", description="prefix of the result columns")
        output: Literal["rules", "json"] = Field(default="rules", description="the shape the judge is asked "
                                                 "to answer in: `rules` (Score: Rule 1..5) or `json`")
        temperature: float = Field(default=0.0, ge=0, description="sampling temperature")
        max_tokens: int = Field(default=1024, ge=1, description="completion length limit")
        seed: int | None = Field(default=None, description="one fixed sampling seed for every request of "
                                 "this stage (default: from the recipe's `seed` and the row)")

    @classmethod
    def expected_requests(cls, params: "Judge.Params", frame: pl.DataFrame) -> dict[str, int]:
        return {"judge": frame.height}

    @classmethod
    def sample_requests(cls, params: "Judge.Params", tasks: pl.DataFrame) -> list[LLMRequest]:
        """The rubric around each task's reference solution (prompt sizes for ``plan --estimate``)."""
        return [LLMRequest(messages=(("user", judge_prompt(question_text(r), r["reference_solution"] or "",
                                                           params.output)),), max_tokens=params.max_tokens)
                for r in tasks.iter_rows(named=True)]

    def run(self, frame: pl.DataFrame, ctx: "StageContext") -> StageOutput:
        p = self.params
        prompts = [judge_prompt(question_text(r), r[p.code] or "", p.output) for r in frame.iter_rows(named=True)]
        asked = ask_each(frame, ctx, "judge", prompts, f"{p.prefix}_judgement", self.name,
                         temperature=p.temperature, max_tokens=p.max_tokens, seed=p.seed)
        graded, failed = [], []
        for text in asked.frame[f"{p.prefix}_judgement"]:
            try:
                graded.append(parse_judgement(text or ""))
                failed.append(None)
            except Unparsed as exc:
                graded.append(None)
                failed.append(f"{exc}; raw: {text}")
        return self._split(asked, graded, failed)

    def _split(self, asked: StageOutput, graded: list[Judgement | None], failed: list[str | None]) -> StageOutput:
        p = self.params
        marked = asked.frame.rename({f"{p.prefix}_judgement_call": f"{p.prefix}_judge_call"}).with_columns(
            pl.Series(f"{p.prefix}_score", [g.total if g else None for g in graded], dtype=pl.Float64),
            pl.Series(f"{p.prefix}_rule_scores", [list(g.rules) if g and g.rules else None for g in graded],
                      dtype=pl.List(pl.Float64)),
            pl.Series(f"{p.prefix}_judge_shape", [g.shape if g else None for g in graded], dtype=pl.String),
            pl.Series("_why", failed, dtype=pl.String))
        ok = pl.col("_why").is_null()
        unparsed = rejections(marked.filter(~ok), "judge_unparsed", pl.col("_why"))
        return StageOutput(marked.filter(ok).drop("_why"), pl.concat([asked.rejected, unparsed]))
