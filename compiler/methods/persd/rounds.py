"""``persd_rounds``: online PERsD. Repeats attempt → execute → refine → parse → execute for the tasks
the student still fails, with the student checkpoint given for each later round."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import polars as pl
from pydantic import Field, model_validator

from compiler.errors import DistillcError
from compiler.stages.base import TASK_COLUMNS, Params, Stage, StageOutput, empty_rejections, register

if TYPE_CHECKING:
    from compiler.runner import StageContext

ROUND_STAGES = ("student_attempt", "execute_attempt", "teacher_refine", "parse_refinement", "execute_refinement")


def still_failing(frame: pl.DataFrame, round_columns: set[str]) -> pl.DataFrame:
    """Task rows (ids of the original task rows) of the tasks none of whose attempts passed in the
    latest round of ``frame``, with the columns they had before the round's stages ran (every
    column but ``round_columns``, the ones those stages write)."""
    if frame.is_empty():
        return frame
    latest = frame.filter(pl.col("round") == pl.col("round").max())
    failing = latest.filter(pl.col("task_attempts_passed") == 0).unique("task_id", keep="first", maintain_order=True)
    carried = [c for c in frame.columns if c not in round_columns and c not in TASK_COLUMNS]
    return failing.select(
        pl.col("task_row_id").alias("row_id"), pl.lit([], dtype=pl.List(pl.String)).alias("parent_ids"),
        *[c for c in TASK_COLUMNS if c not in ("row_id", "parent_ids")], *carried)


@register
class PersdRounds(Stage):
    """Online PERsD: ``rounds`` rounds in all, the first being the stages declared before this one.
    Each later round k takes the tasks still failing (none of their round k-1 attempts passed),
    and runs the earlier stages named in ``repeat`` on them again, in order, with the student
    replaced by ``checkpoints[k-2]`` (a path per round, relative paths from the recipe) and
    ``round`` set to k. Its rows (refinements of round k) are added to the input rows, so
    later stages see every round; drops are those of the repeated stages. With ``rounds: 1`` it
    passes its input through."""

    name = "persd_rounds"
    version = 2
    roles = ("teacher", "student")
    sandbox = True
    scope = "frame"
    storage = "full"      # later rounds' rows descend from task rows, not from this stage's input
    reads = ("round", "task_attempts_passed", "task_row_id")

    class Params(Params):
        rounds: int = Field(default=1, ge=1, description="rounds in all, the declared first round included")
        checkpoints: list[str] = Field(default_factory=list, description="the student checkpoint of each "
                                       "later round (round 2, 3, ...): one path per round after the first")
        repeat: list[str] = Field(default_factory=lambda: list(ROUND_STAGES), min_length=1,
                                  description="names of the earlier stages one round runs, in order")

        @model_validator(mode="after")
        def _one_checkpoint_per_round(self) -> "PersdRounds.Params":
            if len(self.checkpoints) != self.rounds - 1:
                raise ValueError(f"rounds: {self.rounds} needs {self.rounds - 1} checkpoint(s) "
                                 f"(one per round after the first), got {len(self.checkpoints)}")
            return self

    @classmethod
    def earlier_stages(cls, params: "PersdRounds.Params") -> tuple[tuple[str, str], ...]:
        return tuple(("repeat", name) for name in params.repeat)

    @classmethod
    def prior_requests(cls, params: "PersdRounds.Params") -> dict[str, tuple[float, float, float]]:
        """Each later round: at most one student and one teacher call per row still failing."""
        later = float(params.rounds - 1)
        return {"student": (0.0, 0.5 * later, later), "teacher": (0.0, 0.25 * later, later)}

    def run(self, frame: pl.DataFrame, ctx: "StageContext") -> StageOutput:
        frames, dropped = [frame], [empty_rejections()]
        latest = frame
        written = {c.name for name in self.params.repeat
                   for step in [ctx.earlier(name)] if step.cls is not None
                   for c in step.cls.columns(step.params).writes}
        for k, checkpoint in enumerate(self.params.checkpoints, start=2):
            tasks = still_failing(latest, written)
            if tasks.is_empty():
                break
            latest, rejected = self._round(tasks, k, checkpoint, ctx)
            frames.append(latest)
            dropped.append(rejected)
        return StageOutput(pl.concat(frames, how="diagonal_relaxed"), pl.concat(dropped, how="vertical_relaxed"))

    def _round(self, tasks: pl.DataFrame, k: int, checkpoint: str, ctx: "StageContext") -> tuple[pl.DataFrame, pl.DataFrame]:
        current, dropped = tasks, []
        for name in self.params.repeat:
            stage = self._stage(ctx, name, k, checkpoint)
            out = stage.run(current, ctx)
            current = out.frame
            if out.rejected is not None and out.rejected.height:
                dropped.append(out.rejected.with_columns(
                    (pl.lit(f"round {k}: ") + pl.col("detail").fill_null("")).alias("detail")))
        return current, pl.concat([empty_rejections(), *dropped], how="vertical_relaxed")

    def _stage(self, ctx: "StageContext", name: str, k: int, checkpoint: str) -> Stage:
        step = ctx.earlier(name)
        if step.cls is None or step.params is None:
            raise DistillcError(f"stage {self.name!r}: {name!r} cannot be repeated")
        params: Any = step.params
        if step.uses == "student_attempt":
            params = params.model_copy(update={"round": k, "model": checkpoint})
        return step.cls(params)
