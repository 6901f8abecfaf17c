"""``pair``: which (correct, faulty) answers become a preference pair (METHODS §3(d), ours), and the
error types of each kept pair's faulty answer (§3(i): the authors label every faulty sample).

A pair is its own thing, not the question: a question whose pair is dropped still goes on to the
student's views and its tier. So ``pair`` drops no row; each dropped pair is a rejection row under
the pair's id (``pair_id``, derived from the question's), and the question row records the verdict.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import polars as pl
from pydantic import Field

from compiler.llm.types import LLMRequest
from compiler.methods.soda.parse import error_types_named
from compiler.methods.soda.questions import QUESTION_READS, question_text
from compiler.methods.soda.templates import label_prompt
from compiler.stages.base import Columns, Params, Stage, StageOutput, derive_id, register

if TYPE_CHECKING:
    from compiler.runner import StageContext

REASONS = ("correct_not_passing", "faulty_identical", "faulty_not_failing")
PAIR_SCHEMA: dict[str, Any] = {"row_id": pl.String, "task_id": pl.String, "reason": pl.String, "detail": pl.String}


def _lines(text: str) -> list[str]:
    return [" ".join(line.split()) for line in text.splitlines() if line.strip()]


def edit_distance(a: str, b: str) -> float:
    """Levenshtein distance between the answers' non-blank lines (whitespace within a line collapsed),
    divided by the longer line count: 0 when they are the same text but for blank space."""
    x, y = _lines(a), _lines(b)
    if x == y:
        return 0.0
    previous = list(range(len(y) + 1))
    for i, line in enumerate(x, start=1):
        current = [i]
        for j, other in enumerate(y, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (line != other)))
        previous = current
    return previous[-1] / max(len(x), len(y), 1)


@register
class Pair(Stage):
    """Keeps a (correct, faulty) pair when the correct answer passes the static view
    (``{correct}_check`` is ``pass``; ``unknown`` too with ``unknown_passes``), the faulty answer
    differs from it (normalised edit distance over lines > 0) and, with ``require_faulty_fails``, the
    faulty answer fails a view: its static check fails, or (with ``judged``) the judge scores it below
    the correct one. Dropped pairs are rejection rows under ``pair_id`` with reason
    ``correct_not_passing``, ``faulty_identical`` or ``faulty_not_failing``; the question row goes on.
    Adds ``pair_id``, ``pair_kept``, ``pair_reason``, ``pair_distance`` and, for kept pairs,
    ``rejected_error_types`` (the five-type names) with ``rejected_error_source``: ``execution``
    when the faulty answer's failed run names a type, else ``judge`` (with ``label_errors``, the judge
    is asked which types the faulty code contains: ledger stage ``<name>:label``)."""

    name = "pair"
    version = 1
    roles = ("judge",)
    writes = ("pair_id", "pair_kept", "pair_reason", "pair_distance", "rejected_error_types",
              "rejected_error_source")

    class Params(Params):
        correct: str = Field(default="correct", description="prefix of the correct answer's columns "
                             "(`<correct>_text`, `<correct>_check`, `<correct>_score`)")
        faulty: str = Field(default="faulty", description="prefix of the faulty answer's columns")
        require_faulty_fails: bool = Field(default=True, description="keep a pair only if the faulty answer "
                                           "fails a view (its check fails, or it scores lower)")
        judged: bool = Field(default=True, description="both answers have judge scores (`<prefix>_score`): "
                             "a lower score counts as failing a view")
        unknown_passes: bool = Field(default=False, description="a correct answer the static view cannot run "
                                     "(`unknown`: no block, no toolchain) counts as passing")
        label_errors: bool = Field(default=True, description="ask the judge for the error types of a kept "
                                   "pair's faulty answer when its run names none")
        max_tokens: int = Field(default=64, ge=1, description="completion limit of the label question")

    @classmethod
    def columns(cls, params: "Pair.Params") -> Columns:
        c, f = params.correct, params.faulty
        reads = [*QUESTION_READS, f"{c}_text", f"{f}_text", f"{c}_check", f"{f}_check", f"{f}_error_type"]
        if params.judged:
            reads += [f"{c}_score", f"{f}_score"]
        return Columns.of(params, reads=tuple(reads), writes=cls.writes)

    @classmethod
    def prior_requests(cls, params: "Pair.Params") -> dict[str, tuple[float, float, float]]:
        """Label questions: only for kept pairs whose faulty run named no type."""
        return {"judge": (0.0, 0.3, 1.0) if params.label_errors else (0.0, 0.0, 0.0)}

    def run(self, frame: pl.DataFrame, ctx: "StageContext") -> StageOutput:
        rows = list(frame.iter_rows(named=True))
        verdicts = [self._verdict(r) for r in rows]
        types, sources = self._error_types(rows, verdicts, ctx)
        ids = [derive_id(r["row_id"], self.name) for r in rows]
        out = frame.with_columns(
            pl.Series("pair_id", ids, dtype=pl.String),
            pl.Series("pair_kept", [v[0] is None for v in verdicts], dtype=pl.Boolean),
            pl.Series("pair_reason", [v[0] for v in verdicts], dtype=pl.String),
            pl.Series("pair_distance", [v[2] for v in verdicts], dtype=pl.Float64),
            pl.Series("rejected_error_types", types, dtype=pl.List(pl.String)),
            pl.Series("rejected_error_source", sources, dtype=pl.String))
        dropped = [{"row_id": i, "task_id": r["task_id"], "reason": v[0], "detail": v[1]}
                   for i, r, v in zip(ids, rows, verdicts) if v[0] is not None]
        return StageOutput(out, pl.DataFrame(dropped, schema=PAIR_SCHEMA))

    def _verdict(self, row: dict[str, Any]) -> tuple[str | None, str | None, float]:
        """(reason, detail, distance): the reason is None for a kept pair."""
        p, c, f = self.params, self.params.correct, self.params.faulty
        distance = edit_distance(row[f"{c}_text"] or "", row[f"{f}_text"] or "")
        check = row[f"{c}_check"]
        if not (check == "pass" or (p.unknown_passes and check == "unknown")):
            return "correct_not_passing", f"correct answer's static check: {check}", distance
        if distance == 0:
            return "faulty_identical", "the faulty answer is the correct one", distance
        if p.require_faulty_fails and not self._faulty_fails(row):
            scores = f", judge {row[f'{f}_score']:g} vs {row[f'{c}_score']:g}" if p.judged else ""
            return "faulty_not_failing", f"faulty answer's static check: {row[f'{f}_check']}{scores}", distance
        return None, None, distance

    def _faulty_fails(self, row: dict[str, Any]) -> bool:
        c, f = self.params.correct, self.params.faulty
        if row[f"{f}_check"] == "fail":
            return True
        return self.params.judged and row[f"{f}_score"] < row[f"{c}_score"]

    def _error_types(self, rows: list[dict[str, Any]], verdicts: list[tuple], ctx: "StageContext") \
            -> tuple[list[list[str] | None], list[str | None]]:
        """Per row: the faulty answer's error types and where they came from (None for dropped pairs)."""
        f = self.params.faulty
        types: list[list[str] | None] = [None] * len(rows)
        sources: list[str | None] = [None] * len(rows)
        ask = []
        for i, (row, verdict) in enumerate(zip(rows, verdicts)):
            if verdict[0] is not None:
                continue
            if row[f"{f}_check"] == "fail" and row[f"{f}_error_type"]:
                types[i], sources[i] = [row[f"{f}_error_type"]], "execution"
            elif self.params.label_errors:
                ask.append(i)
            else:
                types[i] = []
        requests = [LLMRequest(messages=(("user", label_prompt(question_text(rows[i]), rows[i][f"{f}_text"] or "")),),
                               max_tokens=self.params.max_tokens, served_rows=(rows[i]["row_id"],)) for i in ask]
        for i, result in zip(ask, ctx.generate("judge", requests, part="label")):
            types[i] = error_types_named(result.text or "") if result.ok else []
            sources[i] = "judge" if result.ok else "judge_failed"
        return types, sources
