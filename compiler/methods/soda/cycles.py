"""``soda_cycles``: SODA's later cycles (METHODS §3(a), §3(b) S3 → S1). Cycle 1 is the stages declared
before this one; each later cycle k turns cycle k-1's new questions into question rows and runs the
same stages on them again, with the student checkpoint given for the cycle.

Each stage of a later cycle is stored and fingerprinted like a recipe stage: its fingerprint chains
from the previous one (cycle 2's first from this stage's parent), with its params (the cycle's
checkpoint included), the identity of the models it calls and the cycle number. A compile that dies
in cycle 2 therefore finds, when run again, every cycle-2 stage that had finished, and the cache
answers the requests of the one that had not: the run resumes in cycle 2 and pays again at most the
calls that were in flight. Going from ``cycles: 2`` to ``cycles: 3`` reuses cycles 1 and 2 whole.

Their LLM calls are recorded in the ledger under this stage's fingerprint, labelled
``<this stage>:cycle<k>:<stage>`` (``distillc cost --by stage`` shows each cycle's cost per stage),
and their drops become this stage's rejections, each detail starting with ``cycle <k> <stage>:``.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import polars as pl
from pydantic import Field, model_validator

from compiler.errors import DistillcError
from compiler.fingerprint import canonical_params, stage_fingerprint
from compiler.methods.soda.questions import NEW_QUESTION, question_rows
from compiler.plan import Step, stage_identity
from compiler.runner import StageContext
from compiler.stages.base import Params, Stage, StageOutput, empty_rejections, register
from compiler.store import outputs


@dataclass
class CycleContext(StageContext):
    """The context of a stage run inside a later cycle: ledger label ``<cycles>:cycle<k>:<stage>``
    and the new questions accepted in earlier cycles (``new_questions`` deduplicates against them)."""

    seen_questions: tuple[str, ...] = ()

    def embeddings(self):
        """The recipe's embedder, for a repeated stage that embeds (its own params said so when the
        recipe was planned; this context's step is the cycles stage)."""
        return self.services.embeddings()


@register
class SodaCycles(Stage):
    """Runs ``cycles`` SODA cycles in all, the first being the stages declared before this one. Each
    later cycle k takes cycle k-1's new questions (rows ``soda_kind: new_question`` of cycle k-1) as
    question rows of cycle k and runs the earlier stages named in ``repeat`` on them again, in order
    (default: every stage after ``soda_seeds``), with the student stages' ``model`` set to
    ``checkpoints[k-2]`` when checkpoints are given (one per later cycle, relative paths from the
    recipe). Every stage of every later cycle is stored under its own fingerprint, so a rerun resumes
    where a crash stopped. The output holds every cycle's question rows and new questions (each row
    with its ``cycle``); drops are those of the repeated stages, their detail prefixed ``cycle <k>
    <stage>:``. With ``cycles: 1`` it passes its input through. Stops early when a cycle has no new
    questions."""

    name = "soda_cycles"
    version = 1
    roles = ("teacher", "student", "judge")
    sandbox = True
    scope = "frame"
    reads = ("cycle", "soda_kind", "instruction")

    class Params(Params):
        cycles: int = Field(default=1, ge=1, description="cycles in all, the declared first cycle included "
                            "(METHODS §3(e): 3)")
        checkpoints: list[str] = Field(default_factory=list, description="the student checkpoint of each later "
                                       "cycle (cycle 2, 3, ...), one per later cycle; empty: the student the "
                                       "stages are given")
        repeat: list[str] | None = Field(default=None, min_length=1, description="names of the earlier stages "
                                         "one cycle runs, in order (default: every stage after `soda_seeds`)")

        @model_validator(mode="after")
        def _one_checkpoint_per_cycle(self) -> "SodaCycles.Params":
            if self.checkpoints and len(self.checkpoints) != self.cycles - 1:
                raise ValueError(f"cycles: {self.cycles} takes {self.cycles - 1} checkpoint(s) (one per cycle "
                                 f"after the first) or none, got {len(self.checkpoints)}")
            return self

    @classmethod
    def earlier_stages(cls, params: "SodaCycles.Params") -> tuple[tuple[str, str], ...]:
        return tuple(("repeat", name) for name in params.repeat or ())

    @classmethod
    def prior_requests(cls, params: "SodaCycles.Params") -> dict[str, tuple[float, float, float]]:
        """Per input row, each later cycle: about two new questions per question, each costing the
        teacher 3-5 calls, the judge 3-4 and the student 1."""
        later = float(params.cycles - 1)
        return {"teacher": (0.0, 4 * later, 10 * later), "judge": (0.0, 3 * later, 8 * later),
                "student": (0.0, later, 3 * later)}

    def run(self, frame: pl.DataFrame, ctx: StageContext) -> StageOutput:
        steps = self._steps(ctx)
        kept, dropped = [frame], [empty_rejections()]
        latest, chain = frame, ctx.step.parent
        seen = _new_questions(frame)
        for k in range(2, self.params.cycles + 1):
            seeds = latest.filter((pl.col("soda_kind") == NEW_QUESTION) & (pl.col("cycle") == k - 1))
            if seeds.is_empty():
                break
            latest, rejected, chain = self._cycle(k, question_rows(seeds, k), steps, ctx, chain, tuple(seen))
            kept.append(latest)
            dropped.append(rejected)
            seen += _new_questions(latest)
        return StageOutput(pl.concat(kept, how="diagonal_relaxed"), pl.concat(dropped, how="vertical_relaxed"))

    def _steps(self, ctx: StageContext) -> list[Step]:
        if self.params.repeat is not None:
            return [ctx.earlier(name) for name in self.params.repeat]
        before = ctx.plan.steps[: ctx.step.index] if ctx.plan is not None else ()
        starts = [s.index for s in before if s.uses == "soda_seeds"]
        if not starts:
            raise DistillcError(f"stage {ctx.name!r}: no `soda_seeds` stage runs before it; name the stages "
                                "one cycle runs with `repeat`")
        return [s for s in before if s.index > starts[-1]]

    def _cycle(self, k: int, questions: pl.DataFrame, steps: list[Step], ctx: StageContext, chain: str | None,
               seen: tuple[str, ...]) -> tuple[pl.DataFrame, pl.DataFrame, str | None]:
        current, dropped = questions, []
        for step in steps:
            params = self._params(step, k)
            fp = stage_fingerprint(parents=[chain or ""], uses=step.uses, version=step.version, params=params,
                                   extra={**stage_identity(ctx.recipe, step.cls, params), "cycle": k,
                                          "run_by": f"{self.name}@{self.version}"})
            current, rejected = self._stored(fp, ctx.store) or self._run(step, params, fp, chain, current, ctx,
                                                                        k, seen)
            if rejected.height:
                prefix = pl.lit(f"cycle {k} {step.name}: ")
                dropped.append(rejected.with_columns((prefix + pl.col("detail").fill_null("")).alias("detail")))
            chain = fp
        return current, pl.concat([empty_rejections(), *dropped], how="vertical_relaxed"), chain

    def _params(self, step: Step, k: int) -> Any:
        params: Any = step.params
        checkpoints = self.params.checkpoints
        takes_model = "model" in type(params).model_fields
        if checkpoints and step.cls is not None and "student" in step.cls.roles and takes_model:
            params = params.model_copy(update={"model": checkpoints[k - 2]})
        return params

    @staticmethod
    def _stored(fp: str, store: Any) -> tuple[pl.DataFrame, pl.DataFrame] | None:
        if not outputs.has_output(store, fp):
            return None
        return outputs.load_output(store, fp), outputs.load_rejections(store, fp)

    def _run(self, step: Step, params: Any, fp: str, chain: str | None, frame: pl.DataFrame, ctx: StageContext,
             k: int, seen: tuple[str, ...]) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Run one stage of cycle k on ``frame`` and store its output under ``fp``."""
        label = f"{ctx.name}:cycle{k}:{step.name}"
        inner = CycleContext(dataclasses.replace(ctx.step, name=label), ctx.services, ctx.tasks_fingerprint,
                             ctx.plan, seen_questions=seen)
        started = time.perf_counter()
        assert step.cls is not None
        out = step.cls(params).run(frame, inner)
        inner.check_failures()
        rejected = out.rejected if out.rejected is not None else empty_rejections()
        outputs.commit_output(ctx.store, outputs.OutputMeta(
            fingerprint=fp, stage=label, uses=step.uses, stage_version=step.version,
            params=canonical_params(params), parents=[chain] if chain else [], rows_in=frame.height,
            rows_out=out.frame.height, seconds=time.perf_counter() - started), out.frame, rejected)
        return out.frame, rejected


def _new_questions(frame: pl.DataFrame) -> list[str]:
    rows = frame.filter(pl.col("soda_kind") == NEW_QUESTION)
    return [t for t in rows["instruction"].to_list() if t]
