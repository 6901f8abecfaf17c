"""``execute``: run code against the task's tests in the sandbox (the same sandbox the evaluator
uses, so "passes" means the same at compile time and at eval time)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Literal

import polars as pl
from pydantic import Field

from compiler.stages.base import Params, Stage, StageOutput, register
from evals.sandbox.types import ExecResult, Job, Limits, TestSpec

if TYPE_CHECKING:
    from compiler.runner import StageContext


def jobs_for(frame: pl.DataFrame, code_column: str, tests: str, limits: Limits) -> list[Job]:
    jobs = []
    for code, spec_json in zip(frame[code_column], frame["tests"]):
        spec = TestSpec.from_json(spec_json)
        if tests != "all":
            spec = spec.select(tests)
        jobs.append(Job(code=code or "", tests=spec, limits=limits))
    return jobs


def result_columns(results: list[ExecResult], prefix: str) -> list[pl.Series]:
    return [
        pl.Series(f"{prefix}_passed", [r.passed for r in results], dtype=pl.Boolean),
        pl.Series(f"{prefix}_status", [r.status.value for r in results], dtype=pl.String),
        pl.Series(f"{prefix}_feedback", [r.feedback for r in results], dtype=pl.String),
        pl.Series(f"{prefix}_n_passed", [r.n_passed for r in results], dtype=pl.Int64),
        pl.Series(f"{prefix}_n_total", [r.n_total for r in results], dtype=pl.Int64),
        pl.Series(f"{prefix}_detail", [json.dumps(r.first_failure) if r.first_failure else None
                                       for r in results], dtype=pl.String),
        pl.Series(f"{prefix}_isolation", [r.isolation for r in results], dtype=pl.String),
    ]


@register
class Execute(Stage):
    """Runs the code column against each task's tests and adds ``{prefix}_passed``,
    ``{prefix}_status`` (passed, failed, error, timeout, memory, output_limit, killed, syntax_error),
    ``{prefix}_feedback`` (PERsD's execution-feedback text for the first failure),
    ``{prefix}_n_passed``, ``{prefix}_n_total``, ``{prefix}_detail`` (the first failure as JSON) and
    ``{prefix}_isolation``. Drops nothing: ``filter`` decides."""

    name = "execute"
    version = 1
    sandbox = True
    reads = ("{code}", "tests")
    writes = tuple(f"{{prefix}}_{c}" for c in ("passed", "status", "feedback", "n_passed", "n_total", "detail",
                                               "isolation"))

    class Params(Params):
        code: str = Field(default="code", description="column holding the program")
        prefix: str = Field(default="exec", description="prefix of the result columns")
        tests: Literal["all", "seen", "hidden"] = Field(default="all", description="which tests to run")
        cpu_seconds: float = Field(default=5.0, gt=0, description="CPU-time limit per program")
        memory_mb: int = Field(default=1024, ge=64, description="address-space limit per program")

    def run(self, frame: pl.DataFrame, ctx: "StageContext") -> StageOutput:
        p = self.params
        limits = Limits(cpu_seconds=p.cpu_seconds, memory_mb=p.memory_mb)
        results = ctx.execute(jobs_for(frame, p.code, p.tests, limits))
        return StageOutput(frame.with_columns(result_columns(results, p.prefix)))
