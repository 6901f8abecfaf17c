"""``modular_decompose``: the teacher breaks each direct answer into function specs (METHODS §2(b) A3),
read by :mod:`.specs`."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import polars as pl
from pydantic import Field

from compiler.llm.types import LLMRequest
from compiler.methods.amr_evol.specs import parse_specs
from compiler.methods.amr_evol.templates import DECOMPOSE, DECOMPOSE_SYSTEM
from compiler.stages.base import Columns, Params, Stage, StageOutput, derive_id, empty_rejections, parent_link, register
from compiler.stages.generate import attach

if TYPE_CHECKING:
    from compiler.runner import StageContext


@register
class ModularDecompose(Stage):
    """The teacher deconstructs each answer (``solution``, by default the direct answer) into function
    specs: typed signatures with a description, parameters and returns, no bodies (one-shot prompt).
    Each answer becomes a decomposition row (parent: the answer row) with ``md_text``, ``md_call``,
    ``specs`` (a JSON list of {name, signature, description, params, returns}) and ``n_specs``. A spec
    whose signature does not parse (or that has no description) is a rejection row of its own (reason
    ``unparsable_spec``, the spec's first line and why); an answer with no readable spec is dropped
    with reason ``no_specs``; a failed request with ``llm_failed``."""

    name = "modular_decompose"
    version = 1
    roles = ("teacher",)
    writes = ("md_text", "md_call", "specs", "n_specs")

    class Params(Params):
        solution: str = Field(default="answer", description="column with the potential solution shown to the teacher")
        temperature: float = Field(default=0.0, ge=0, description="teacher sampling temperature (AMR-Evol: 0)")
        max_tokens: int = Field(default=3000, ge=1, description="completion length limit (AMR-Evol: 3000)")
        system: str = Field(default=DECOMPOSE_SYSTEM, description="system message with the one-shot example")
        template: str = Field(default=DECOMPOSE, description="user message; {instruction} and {solution} are filled in")

    @classmethod
    def columns(cls, params: "ModularDecompose.Params") -> Columns:
        return Columns.of(params, reads=("instruction", "{solution}"), writes=cls.writes)

    @classmethod
    def expected_requests(cls, params: "ModularDecompose.Params", frame: pl.DataFrame) -> dict[str, int]:
        return {"teacher": frame.height}

    def run(self, frame: pl.DataFrame, ctx: "StageContext") -> StageOutput:
        rows = frame.with_columns(parent_link(), pl.Series(
            "row_id", [derive_id(r, self.name) for r in frame["row_id"]], dtype=pl.String))
        answered = attach(rows, ctx.generate("teacher", [self._request(r) for r in rows.iter_rows(named=True)]),
                          "md_text", self.name)
        out = answered.frame.rename({"md_text_call": "md_call"})
        specs, dropped = [], []
        for row in out.iter_rows(named=True):
            good, bad = parse_specs(row["md_text"])
            specs.append(json.dumps([s.to_dict() for s in good], ensure_ascii=False) if good else None)
            dropped += [{"row_id": derive_id(row["row_id"], "spec", i), "task_id": row["task_id"],
                         "reason": "unparsable_spec", "detail": f"{b.first_line}: {b.reason}"} for i, b in enumerate(bad)]
            if not good:
                dropped.append({"row_id": row["row_id"], "task_id": row["task_id"], "reason": "no_specs",
                                "detail": f"none of its {len(bad)} specs could be read" if bad
                                else "the answer holds no function spec"})
        marked = out.with_columns(pl.Series("specs", specs, dtype=pl.String))
        marked = marked.with_columns(pl.col("specs").map_elements(lambda s: len(json.loads(s)), return_dtype=pl.Int64)
                                     .alias("n_specs"))
        rejected = pl.concat([empty_rejections(), answered.rejected,
                              pl.DataFrame(dropped, schema=empty_rejections().schema)])
        return StageOutput(marked.filter(pl.col("specs").is_not_null()), rejected)

    def _request(self, row: dict[str, Any]) -> LLMRequest:
        p = self.params
        user = p.template.format(instruction=row["instruction"].strip(), solution=(row[p.solution] or "").strip())
        return LLMRequest(messages=(("system", p.system), ("user", user)), temperature=p.temperature,
                          max_tokens=p.max_tokens, served_rows=(row["row_id"],))
