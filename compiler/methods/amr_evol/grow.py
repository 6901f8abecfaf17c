"""``grow_modules``: the database grows from the evolved answers (METHODS §2(b) A6, §2(h)-3): a function
of an evolved answer that runs in isolation and is notably different from every module (best cosine
below ``novelty``) gets teacher-written tests; if it passes them in the sandbox it is added."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
from pydantic import Field

from compiler.codeparse import extract_code
from compiler.llm.types import LLMRequest
from compiler.methods.amr_evol.candidates import Candidate, Outcomes, candidates_from, unique, verify_and_add, with_tests
from compiler.methods.amr_evol.templates import MODULE_TESTS
from compiler.moduledb import ModuleIndex
from compiler.moduledb.records import asserts_in, functions_in
from compiler.stages.base import Columns, Params, Stage, StageOutput, register

if TYPE_CHECKING:
    from compiler.runner import StageContext


@register
class GrowModules(Stage):
    """Adds the new, verified functions of the evolved answers to the module database and passes the
    rows through with ``new_module_ids`` (JSON list). A candidate is every top-level function of
    ``code`` that runs in isolation (else ``module_not_isolated``); it must be notably different from
    every module already stored and every candidate accepted before it (best cosine below
    ``novelty``, else ``module_not_novel``, naming the nearest); the teacher then writes
    ``min_tests`` asserts for it (one request per candidate; fewer usable asserts:
    ``module_too_few_tests``) and it is added (origin ``evolved``, verified) when it passes them in
    the sandbox (else ``module_failed_tests``)."""

    name = "grow_modules"
    version = 1
    roles = ("teacher",)
    sandbox = True
    embeds = True
    scope = "frame"

    class Params(Params):
        code: str = Field(default="evolved_code", description="column with the evolved code")
        novelty: float = Field(default=0.85, ge=-1, le=1, description="add only modules whose best cosine to the "
                               "database is below this (METHODS §2(h)-3: 0.85)")
        min_tests: int = Field(default=3, ge=1, description="asserts the teacher writes, all needed (§2(h)-3: 3)")
        max_tokens: int = Field(default=1024, ge=1, description="completion length limit of the test request")
        cpu_seconds: float = Field(default=5.0, gt=0, description="CPU-time limit of each module's tests")
        template: str = Field(default=MODULE_TESTS, description="the test request; {tests} and {code} are filled in")

    @classmethod
    def columns(cls, params: "GrowModules.Params") -> Columns:
        return Columns.of(params, reads=("{code}",), writes=("new_module_ids",))

    @classmethod
    def prior_requests(cls, params: "GrowModules.Params") -> dict[str, tuple[float, float, float]]:
        return {"teacher": (0.0, 1.0, 3.0)}   # one per novel function of an answer

    def run(self, frame: pl.DataFrame, ctx: "StageContext") -> StageOutput:
        out = Outcomes(self.name)
        cands = unique([c for row in frame.iter_rows(named=True)
                        for c in candidates_from(functions_in(row[self.params.code] or "", origin="evolved",
                                                              source=row["row_id"]), row, out)])
        novel = self._novel(cands, ctx, out)
        answers = ctx.generate("teacher", [self._request(c) for c in novel])
        tested = []
        for c, answer in zip(novel, answers):
            tests = asserts_in(extract_code(answer.text or "") or "", c.module.name) if answer.ok else []
            kept = with_tests(c, tests[: self.params.min_tests], self.params.min_tests, out)
            if kept is not None:
                tested.append(kept)
        verify_and_add(tested, ctx, out, self.params.cpu_seconds)
        ids = [json.dumps(out.added.get(r, [])) for r in frame["row_id"]]
        return StageOutput(frame.with_columns(pl.Series("new_module_ids", ids, dtype=pl.String)), out.frame())

    def _novel(self, cands: list[Candidate], ctx: "StageContext", out: Outcomes) -> list[Candidate]:
        """The candidates below ``novelty`` against the database and the candidates kept before them."""
        if not cands:
            return []
        embeddings = ctx.embeddings()
        index = ModuleIndex.load(ctx.store, embeddings).without(ctx.fingerprint)
        vectors = embeddings.vectors([c.module.text() for c in cands])
        nearest = index.search(vectors, 1) if len(index) else [[] for _ in cands]
        kept: list[int] = []
        for i, c in enumerate(cands):
            best = [(s, index.frame["name"][j]) for j, s in nearest[i]]
            if kept:
                sims = vectors[kept] @ vectors[i]
                best.append((float(sims.max()), cands[kept[int(np.argmax(sims))]].module.name + " (new)"))
            top = max(best, default=None)
            if top is not None and top[0] >= self.params.novelty:
                out.reject(c.row_id, c.task_id, c.module.name, "module_not_novel",
                           f"cosine {top[0]:.3f} with {top[1]} (novelty below {self.params.novelty} needed)")
            else:
                kept.append(i)
        return [cands[i] for i in kept]

    def _request(self, c: Candidate) -> LLMRequest:
        text = self.params.template.format(tests=self.params.min_tests, code=c.module.code)
        return LLMRequest(messages=(("user", text),), temperature=0.0, max_tokens=self.params.max_tokens,
                          served_rows=(c.row_id,))
