"""``synthesize_tests``: PERsD's unit tests (METHODS §1(b) P0): the teacher proposes inputs, the
reference solution computes the expected outputs in the sandbox."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import polars as pl
from pydantic import Field

from compiler.llm.types import LLMRequest
from compiler.stages.base import Params, Stage, StageOutput, empty_rejections, register, rejections
from compiler.methods.persd.oracle import OracleState, oracle_jobs, parse_calls
from compiler.methods.persd.templates import TEST_INPUTS
from evals import codeinfo
from evals.problems import io_tests
from evals.sandbox.types import Limits, TestSpec

if TYPE_CHECKING:
    from compiler.runner import StageContext

MAX_ORACLE_ROUNDS = 8


def has_tests(spec_json: str | None) -> bool:
    if not spec_json:
        return False
    spec = TestSpec.from_json(spec_json)
    return spec.style != "run" and spec.n_tests > 0


@register
class SynthesizeTests(Stage):
    """PERsD's test construction. Tasks that already have tests keep them (``keep_existing``).
    For the others the teacher proposes ``n_inputs`` inputs written as calls ``fn(args)`` (one
    request per task; a line that contains the function name is sliced from it, as PERsD does);
    the reference solution runs on them twice in the sandbox (in order, then in reverse order) and
    its outputs (``str`` of the value, or what it printed when it returned None) become io tests,
    the first ``seen`` of them ``seen`` and the rest ``hidden``. Calls that raise or print object
    reprs are left out. Drops tasks with reason ``no_reference`` (no reference defining a
    function: PERsD skips outputs without ``def``), ``nondeterministic_reference`` (the two runs
    disagree), ``reference_failed`` (it does not compile), ``too_few_tests`` (fewer than
    ``min_tests`` valid tests) or ``llm_failed``. Adds ``tests_origin`` (``given`` or
    ``synthesized``); task rows keep their ids."""

    name = "synthesize_tests"
    version = 2
    roles = ("teacher",)
    sandbox = True
    reads = ("tests", "reference_solution", "entry_point", "instruction")
    writes = ("tests", "tests_origin")

    class Params(Params):
        n_inputs: int = Field(default=5, ge=1, description="inputs the teacher is asked for per task")
        min_tests: int = Field(default=3, ge=1, description="drop tasks with fewer valid tests than this")
        seen: int = Field(default=1, ge=0, description="how many of the synthesized tests are `seen`")
        keep_existing: bool = Field(default=True, description="tasks that already have tests keep them "
                                    "(false: every task gets synthesized tests)")
        template: str = Field(default=TEST_INPUTS, description="the teacher's prompt; {n}, {entry_point}, "
                              "{instruction} and {reference} are filled in")
        temperature: float = Field(default=0.0, ge=0, description="teacher sampling temperature")
        max_tokens: int = Field(default=256, ge=1, description="teacher completion length limit")
        cpu_seconds: float = Field(default=5.0, gt=0, description="CPU-time limit of each reference run")

    @classmethod
    def sample_requests(cls, params: "SynthesizeTests.Params", tasks: pl.DataFrame) -> list[LLMRequest]:
        """The requests for tasks without tests (for ``plan --estimate``)."""
        stage = cls(params)
        return [stage._request(r) for r in tasks.iter_rows(named=True)
                if _usable(r) and not (params.keep_existing and has_tests(r["tests"]))]

    @classmethod
    def expected_requests(cls, params: "SynthesizeTests.Params", frame: pl.DataFrame) -> dict[str, int]:
        """One request per task that needs tests: none for tasks that bring theirs."""
        return {"teacher": sum(1 for r in frame.iter_rows(named=True)
                               if _usable(r) and not (params.keep_existing and has_tests(r["tests"])))}

    @classmethod
    def prior_requests(cls, params: "SynthesizeTests.Params") -> dict[str, tuple[float, float, float]]:
        return {"teacher": (0.0, 0.5, 1.0)}

    def run(self, frame: pl.DataFrame, ctx: "StageContext") -> StageOutput:
        keep = self.params.keep_existing
        given = pl.Series([keep and has_tests(t) for t in frame["tests"]], dtype=pl.Boolean)
        usable = pl.Series([_usable(r) for r in frame.iter_rows(named=True)], dtype=pl.Boolean)
        made, lost = self._synthesize(frame.filter(~given & usable), ctx)
        kept = pl.concat([frame.filter(given).with_columns(tests_origin=pl.lit("given")), made], how="vertical")
        order = frame.select("row_id").with_row_index("_order")
        kept = kept.join(order, on="row_id").sort("_order").drop("_order")
        no_reference = rejections(frame.filter(~given & ~usable), "no_reference",
                                  "no reference solution defining the entry point")
        return StageOutput(kept, pl.concat([empty_rejections(), no_reference, lost]))

    def _synthesize(self, frame: pl.DataFrame, ctx: "StageContext") -> tuple[pl.DataFrame, pl.DataFrame]:
        rows = list(frame.iter_rows(named=True))
        results = ctx.generate("teacher", [self._request(r) for r in rows])
        calls = [parse_calls(r.text or "", row["entry_point"], self.params.n_inputs) if r.ok else []
                 for row, r in zip(rows, results)]
        states = [OracleState(list(c)) for c in calls]
        self._run_oracle(rows, states, ctx)
        outcome = [self._outcome(row, state, order, result)
                   for row, state, order, result in zip(rows, states, calls, results)]
        kept = [o for o in outcome if "tests" in o]
        out = pl.DataFrame([o["row"] | {"tests": o["tests"], "tests_origin": "synthesized"} for o in kept],
                           schema={**frame.schema, "tests_origin": pl.String})
        lost = pl.DataFrame([o for o in outcome if "reason" in o],
                            schema={"row_id": pl.String, "task_id": pl.String, "reason": pl.String,
                                    "detail": pl.String})
        return out, lost

    def _request(self, row: dict[str, Any]) -> LLMRequest:
        p = self.params
        text = p.template.format(n=p.n_inputs, entry_point=row["entry_point"],
                                 instruction=row["instruction"].strip(), reference=row["reference_solution"].rstrip())
        return LLMRequest(messages=(("user", text),), temperature=p.temperature, max_tokens=p.max_tokens,
                          served_rows=(row["row_id"],))

    def _run_oracle(self, rows: list[dict[str, Any]], states: list[OracleState], ctx: "StageContext") -> None:
        limits = Limits(cpu_seconds=self.params.cpu_seconds)
        for _ in range(MAX_ORACLE_ROUNDS):
            active = [i for i, s in enumerate(states) if not s.settled]
            if not active:
                return
            jobs = [j for i in active for j in oracle_jobs(rows[i]["reference_solution"], rows[i]["entry_point"],
                                                            states[i].calls, limits)]
            results = ctx.execute(jobs)
            for k, i in enumerate(active):
                states[i].absorb(results[2 * k], results[2 * k + 1])

    def _outcome(self, row: dict[str, Any], state: OracleState, order: list[str], result: Any) -> dict[str, Any]:
        def drop(reason: str, detail: str | None) -> dict[str, Any]:
            return {"row_id": row["row_id"], "task_id": row["task_id"], "reason": reason, "detail": detail}
        if not result.ok:
            return drop("llm_failed", result.error)
        if state.failure is not None:
            return drop(state.failure, state.detail)
        pairs = state.tests(order)
        if len(pairs) < self.params.min_tests:
            return drop("too_few_tests", f"{len(pairs)} valid of {len(order)} proposed inputs "
                        f"(need {self.params.min_tests})")
        return {"row": row, "tests": io_tests(pairs, row["entry_point"], n_seen=self.params.seen).to_json()}


def _usable(row: dict[str, Any]) -> bool:
    ref, ep = row["reference_solution"], row["entry_point"]
    return bool(ref and ep and ep in codeinfo.defined_functions(ref))


__all__ = ["SynthesizeTests", "has_tests"]
