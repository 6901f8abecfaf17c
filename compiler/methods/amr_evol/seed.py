"""``seed_modules``: the first modules of the database (METHODS §2(b) A2, §2(h)-4): functions the
teacher writes with their unit tests, from the seed tasks' domain, stored only when their tests pass
in the sandbox; and, optionally, a library file of the user's own."""

from __future__ import annotations

from itertools import product
from typing import TYPE_CHECKING, Any

import polars as pl
from pydantic import Field

from compiler.codeparse import fenced_blocks
from compiler.llm.types import LLMRequest
from compiler.methods.amr_evol.candidates import Candidate, Outcomes, candidates_from, unique, verify_and_add, with_tests
from compiler.methods.amr_evol.templates import SEED_MODULES
from compiler.moduledb.library import read_library
from compiler.moduledb.records import asserts_in, functions_in
from compiler.stages.base import Params, Stage, StageOutput, derive_id, empty_rejections, register, rejections
from compiler.stages.sources import resolve_path

if TYPE_CHECKING:
    from compiler.runner import StageContext


@register
class SeedModules(Stage):
    """Seeds the module database and passes its rows through unchanged. For each of the first ``tasks``
    rows (default: all), ``requests`` times, the teacher writes ``functions`` building-block functions
    for tasks like it, each with at least ``min_tests`` asserts (T=0.7). Every function that runs in
    isolation and passes its asserts in the sandbox is stored (origin ``seed``, verified). ``library``
    adds a JSONL file of your own modules (the `distillc modules import` format; origin ``imported``;
    those with tests verified first). Rejections name the candidate and why: ``module_not_isolated``,
    ``module_too_few_tests``, ``module_failed_tests``; a failed request ``llm_failed`` (its task row is
    kept)."""

    name = "seed_modules"
    version = 1
    roles = ("teacher",)
    sandbox = True
    embeds = True
    scope = "frame"
    reads = ("instruction",)

    class Params(Params):
        tasks: int | None = Field(default=None, ge=0, description="seed tasks to write modules for (default: every row; 0: none)")
        requests: int = Field(default=1, ge=1, description="requests per task (each a new sample)")
        functions: int = Field(default=3, ge=1, description="functions asked for per request")
        min_tests: int = Field(default=3, ge=1, description="asserts a function needs to be considered (METHODS §2(h)-3: 3)")
        temperature: float = Field(default=0.7, ge=0, description="teacher sampling temperature")
        max_tokens: int = Field(default=2048, ge=1, description="completion length limit")
        library: str | None = Field(default=None, description="a JSONL library of your own modules (relative to the recipe)")
        cpu_seconds: float = Field(default=5.0, gt=0, description="CPU-time limit of each module's tests")
        template: str = Field(default=SEED_MODULES, description="the teacher's prompt; {functions}, {tests} and {instruction} are filled in")

    @classmethod
    def files(cls, params: "SeedModules.Params") -> tuple[tuple[str, str], ...]:
        return (("library", params.library),) if params.library else ()

    @classmethod
    def expected_requests(cls, params: "SeedModules.Params", frame: pl.DataFrame) -> dict[str, int]:
        n = frame.height if params.tasks is None else min(params.tasks, frame.height)
        return {"teacher": n * params.requests}

    @classmethod
    def prior_requests(cls, params: "SeedModules.Params") -> dict[str, tuple[float, float, float]]:
        return {"teacher": (float(params.requests),) * 3}

    def run(self, frame: pl.DataFrame, ctx: "StageContext") -> StageOutput:
        p = self.params
        out = Outcomes(self.name)
        rows = frame.to_dicts()[: p.tasks] if p.tasks is not None else frame.to_dicts()
        asked = list(product(rows, range(p.requests)))
        results = ctx.generate("teacher", [self._request(row, k) for row, k in asked])
        cands: list[Candidate] = []
        failed = []
        for (row, k), result in zip(asked, results):
            if not result.ok:
                failed.append({"row_id": derive_id(row["row_id"], self.name, k), "task_id": row["task_id"],
                               "error": result.error})
                continue
            cands += self._candidates(result.text or "", row, out)
        cands += self._library(ctx)
        verify_and_add(unique(cands), ctx, out, p.cpu_seconds)
        lost = rejections(pl.DataFrame(failed, schema={"row_id": pl.String, "task_id": pl.String, "error": pl.String}),
                          "llm_failed", pl.col("error"))
        return StageOutput(frame, pl.concat([empty_rejections(), lost, out.frame()]))

    def _request(self, row: dict[str, Any], k: int) -> LLMRequest:
        p = self.params
        text = p.template.format(functions=p.functions, tests=p.min_tests, instruction=row["instruction"].strip())
        return LLMRequest(messages=(("user", text),), temperature=p.temperature, max_tokens=p.max_tokens,
                          sample_index=k, served_rows=(row["row_id"],))

    def _candidates(self, text: str, row: dict[str, Any], out: Outcomes) -> list[Candidate]:
        found = []
        for block in fenced_blocks(text) or []:
            for cand in candidates_from(functions_in(block.code, origin="seed", source=row["row_id"]), row, out):
                tested = with_tests(cand, asserts_in(block.code, cand.module.name), self.params.min_tests, out)
                if tested is not None:
                    found.append(tested)
        return found

    def _library(self, ctx: "StageContext") -> list[Candidate]:
        if not self.params.library:
            return []
        path = resolve_path(self.params.library, ctx.base_dir)
        return [Candidate(m, derive_id(self.name, "library", m.module_id), None)
                for m in read_library(path, self.params.library)]
