"""``evolve_response``: adaptive response evolution (METHODS §2(b) A5): the teacher answers again with
the retrieved modules as inspiration, and, by flag, the decomposition (§2(h)-1)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import polars as pl
from pydantic import Field

from compiler.codeparse import extract_code, strip_main_guard
from compiler.llm.types import LLMRequest
from compiler.methods.amr_evol.selftest import teacher_test, tests_request, verdicts
from compiler.methods.amr_evol.specs import specs_text
from compiler.methods.amr_evol.templates import EVOLVE, EVOLVE_SYSTEM, NO_MODULES, SPECS_SECTION
from compiler.stages.base import Columns, Params, Stage, StageOutput, derive_id, parent_link, register, rejections
from compiler.stages.generate import attach

if TYPE_CHECKING:
    from compiler.runner import StageContext


def modules_text(retrieved: list[dict[str, Any]]) -> str:
    """The retrieved modules as the prompt shows them: each module's code in a fence."""
    if not retrieved:
        return NO_MODULES
    return "\n\n".join(f"```python\n{m['code'].rstrip()}\n```" for m in retrieved)


@register
class EvolveResponse(Stage):
    """The teacher writes a refined answer to each question from the retrieved modules, shown as
    inspiration it must answer as if it had never seen (one-shot prompt, T=0). ``include_specs`` adds
    the decomposition to the prompt (METHODS §2(h)-1: Eq. 4 has it, the paper's prompt does not;
    default: include); ``use_modules: false`` shows none (the ablation without evolution, which reads
    no retrieval). Each row becomes an evolved row (parent: its input row) with ``evolved_answer``,
    ``evolved_call`` and ``evolved_code`` (its code, for the database's growth); the SFT target is the
    answer itself, with no trace of which modules it saw (§2(h)-7). ``self_test: true`` labels each
    evolved answer with teacher-written tests run in the sandbox (``self_test_passed``,
    ``self_test_status``; never a filter, as in the paper). Drops ``llm_failed`` and ``no_code``."""

    name = "evolve_response"
    version = 1
    roles = ("teacher",)
    sandbox = True
    writes = ("evolved_answer", "evolved_call", "evolved_code", "self_test_passed", "self_test_status")

    class Params(Params):
        include_specs: bool = Field(default=True, description="show the decomposition's specs too (false: the "
                                    "paper's App. D prompt exactly)")
        use_modules: bool = Field(default=True, description="show the retrieved modules (false: the w/o-ARE "
                                  "ablation, answering from the decomposition alone)")
        temperature: float = Field(default=0.0, ge=0, description="teacher sampling temperature (AMR-Evol: 0)")
        max_tokens: int = Field(default=3000, ge=1, description="completion length limit (AMR-Evol: 3000)")
        system: str = Field(default=EVOLVE_SYSTEM, description="system message with the one-shot example")
        template: str = Field(default=EVOLVE, description="user message; {instruction}, {specs} (the specs "
                              "section or nothing) and {modules} are filled in")
        self_test: bool = Field(default=False, description="label each answer with teacher tests run in the "
                                "sandbox (one more teacher call per row; labels only)")
        cpu_seconds: float = Field(default=5.0, gt=0, description="CPU-time limit of a self-test run")

    @classmethod
    def columns(cls, params: "EvolveResponse.Params") -> Columns:
        reads = ("instruction",) + (("specs",) if params.include_specs else ()) \
            + (("retrieved",) if params.use_modules else ())
        return Columns.of(params, reads=reads, writes=cls.writes)

    @classmethod
    def expected_requests(cls, params: "EvolveResponse.Params", frame: pl.DataFrame) -> dict[str, int]:
        return {"teacher": frame.height * (2 if params.self_test else 1)}

    def run(self, frame: pl.DataFrame, ctx: "StageContext") -> StageOutput:
        rows = frame.with_columns(parent_link(), pl.Series(
            "row_id", [derive_id(r, self.name) for r in frame["row_id"]], dtype=pl.String))
        out = attach(rows, ctx.generate("teacher", [self.request(r) for r in rows.iter_rows(named=True)]),
                     "evolved_answer", self.name)
        done = out.frame.rename({"evolved_answer_call": "evolved_call"})
        codes = [extract_code(t or "") for t in done["evolved_answer"]]
        codes = [strip_main_guard(c) if c and c.strip() else None for c in codes]
        done = done.with_columns(pl.Series("evolved_code", codes, dtype=pl.String))
        no_code = done.filter(pl.col("evolved_code").is_null())
        done = done.filter(pl.col("evolved_code").is_not_null())
        done = self._self_test(done, ctx)
        return StageOutput(done, pl.concat([out.rejected, rejections(no_code, "no_code", "no code in the evolved answer")]))

    def request(self, row: dict[str, Any]) -> LLMRequest:
        p = self.params
        specs = SPECS_SECTION.format(specs=specs_text(json.loads(row["specs"]))) if p.include_specs else ""
        modules = modules_text(json.loads(row["retrieved"])) if p.use_modules else NO_MODULES
        user = p.template.format(instruction=row["instruction"].strip(), specs=specs, modules=modules)
        return LLMRequest(messages=(("system", p.system), ("user", user)), temperature=p.temperature,
                          max_tokens=p.max_tokens, served_rows=(row["row_id"],))

    def _self_test(self, frame: pl.DataFrame, ctx: "StageContext") -> pl.DataFrame:
        if not self.params.self_test:
            return frame.with_columns(pl.lit(None, dtype=pl.Boolean).alias("self_test_passed"),
                                      pl.lit(None, dtype=pl.String).alias("self_test_status"))
        rows = list(frame.iter_rows(named=True))
        answers = ctx.generate("teacher", [tests_request(r["row_id"], r["instruction"], r["evolved_code"])
                                           for r in rows], part="self_test")
        tests = [teacher_test(a.text if a.ok else None, r["evolved_code"], self.params.cpu_seconds)
                 for r, a in zip(rows, answers)]
        results = ctx.execute([t.job for t in tests if t.job is not None])
        labels = verdicts(tests, results)
        return frame.with_columns(pl.Series("self_test_passed", [v[0] for v in labels], dtype=pl.Boolean),
                                  pl.Series("self_test_status", [v[1] for v in labels], dtype=pl.String))
