"""What a stage is: a registered, versioned step with strictly validated params that turns the
frame produced by the previous stage into a new frame, recording why it dropped any row.

Frames are polars DataFrames. Every frame has ``row_id`` (str) and ``parent_ids`` (list[str]);
rows made from other rows get new ids derived from their parents' (``derive_id``), rows carried
through keep theirs. The task columns (``TASK_COLUMNS``) travel with every row.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import polars as pl
from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from compiler.runner import StageContext

# The normalised task table every source produces (all strings; `tests` is a TestSpec JSON,
# `meta` a JSON object; entry_point/header/reference_solution may be null).
TASK_SCHEMA: dict[str, Any] = {
    "row_id": pl.String,
    "parent_ids": pl.List(pl.String),
    "task_id": pl.String,
    "instruction": pl.String,
    "entry_point": pl.String,
    "header": pl.String,
    "reference_solution": pl.String,
    "tests": pl.String,
    "source": pl.String,
    "language": pl.String,
    "meta": pl.String,
}
TASK_COLUMNS = tuple(TASK_SCHEMA)

REJECTION_SCHEMA: dict[str, Any] = {
    "row_id": pl.String, "task_id": pl.String, "reason": pl.String, "detail": pl.String,
}


class Params(BaseModel):
    """Base of every stage's params: frozen, strict, unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


@dataclass
class StageOutput:
    frame: pl.DataFrame
    rejected: pl.DataFrame | None = None  # columns of REJECTION_SCHEMA


class Stage:
    """Subclass, set ``name``, ``version``, ``Params`` and ``roles`` (models it calls), and
    implement :meth:`run`. Bump ``version`` whenever the stage's behaviour changes."""

    name: ClassVar[str]
    version: ClassVar[int] = 1
    Params: ClassVar[type[Params]] = Params
    roles: ClassVar[tuple[str, ...]] = ()  # "teacher" / "student" / "judge": enter the fingerprint
    sandbox: ClassVar[bool] = False  # runs programs (its fingerprint includes the sandbox version)

    def __init__(self, params: Params):
        self.params = params

    def run(self, frame: pl.DataFrame, ctx: "StageContext") -> StageOutput:
        raise NotImplementedError


REGISTRY: dict[str, type[Stage]] = {}


def register(cls: type[Stage]) -> type[Stage]:
    if cls.name in REGISTRY:
        raise RuntimeError(f"stage {cls.name!r} registered twice")
    REGISTRY[cls.name] = cls
    return cls


# -- helpers shared by stages -------------------------------------------------------------------

def derive_id(*parts: object) -> str:
    """A stable row id from its parent's id and what distinguishes it (stage, sample index, ...)."""
    h = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).hexdigest()
    return h[:24]


def parent_link(column: str = "row_id") -> pl.Expr:
    """``parent_ids`` pointing at the row a new row was made from."""
    return pl.concat_list(pl.col(column).cast(pl.String)).alias("parent_ids")


def rejections(frame: pl.DataFrame, reason: str | pl.Expr, detail: str | pl.Expr | None = None) -> pl.DataFrame:
    """Rejection rows (row_id, task_id, reason, detail) for every row of ``frame``."""
    def lit(x: str | pl.Expr | None) -> pl.Expr:
        return x if isinstance(x, pl.Expr) else pl.lit(x, dtype=pl.String)
    return frame.select(
        pl.col("row_id"),
        pl.col("task_id") if "task_id" in frame.columns else pl.lit(None, dtype=pl.String).alias("task_id"),
        lit(reason).cast(pl.String).alias("reason"),
        lit(detail).cast(pl.String).alias("detail"),
    )


def empty_rejections() -> pl.DataFrame:
    return pl.DataFrame(schema=REJECTION_SCHEMA)
