"""What a stage is: a registered, versioned step with strictly validated params that turns the
frame produced by the previous stage into a new frame, recording why it dropped any row.

Frames are polars DataFrames. Every frame has ``row_id`` (str) and ``parent_ids`` (list[str]);
rows made from other rows get new ids derived from their parents' (``derive_id``), rows carried
through keep theirs. The task columns (``TASK_COLUMNS``) travel with every row.

A stage declares its wiring (:class:`Columns`): the columns it reads and the ones it adds, as
templates that may name its params (``"{prefix}_passed"``), whether its output replaces the frame
(training records) and its ``scope``: ``row`` (each output row depends on one input row: it may run
on partitions, on other machines), ``task`` (it looks at the rows of one task together) or
``frame`` (it needs every row: dedup, decisions over the whole set). :mod:`compiler.wiring` checks
a recipe's wiring before anything runs.
"""

from __future__ import annotations

import hashlib
import re
import string
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from compiler.preflight import Preflight
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


Scope = Literal["row", "task", "frame"]
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Column:
    """One column a stage reads or writes; ``param`` names the param it came from, if any."""

    name: str
    param: str | None = None


@dataclass(frozen=True)
class Columns:
    """A stage's wiring for given params. ``any_of``: at least one of these must exist (stages that
    read "those present", like dedup). ``optional``: read when present, never required.
    ``replaces``: the output holds only ``writes`` (records)."""

    reads: tuple[Column, ...] = ()
    writes: tuple[Column, ...] = ()
    any_of: tuple[Column, ...] = ()
    replaces: bool = False
    optional: tuple[Column, ...] = ()

    @staticmethod
    def of(params: "Params | None", *, reads: tuple[str, ...] = (), writes: tuple[str, ...] = (),
           any_of: tuple[str, ...] = (), replaces: bool = False, optional: tuple[str, ...] = ()) -> "Columns":
        return Columns(expand(reads, params), expand(writes, params), expand(any_of, params), replaces,
                       expand(optional, params))


def placeholders(*texts: str | None) -> tuple[str, ...]:
    """The ``{column}`` names a prompt template fills from the row (``{{``/``}}`` are literal
    braces); raises ValueError for a malformed template."""
    names: list[str] = []
    for text in texts:
        for _, field, _, _ in string.Formatter().parse(text or ""):
            if field is not None:
                name = re.split(r"[.\[!:]", field, maxsplit=1)[0]
                if not name:
                    raise ValueError(f"a template placeholder needs a column name, got {{{field}}}")
                names.append(name)
    return tuple(dict.fromkeys(names))


def expand(templates: tuple[str, ...], params: "Params | None") -> tuple[Column, ...]:
    """Column templates filled from params: ``"{code}"`` is the value of param ``code``; a param
    holding a list gives one column per entry; a param that is None drops the column."""
    out: list[Column] = []
    for template in templates:
        names = _PLACEHOLDER.findall(template)
        if not names:
            out.append(Column(template))
            continue
        if params is None or len(names) != 1:
            raise ValueError(f"column template {template!r}: one placeholder, with params")
        value = getattr(params, names[0])
        values = value if isinstance(value, (list, tuple)) else [value]
        out += [Column(template.replace("{" + names[0] + "}", str(v)), names[0]) for v in values if v is not None]
    return tuple(out)


@dataclass
class StageOutput:
    frame: pl.DataFrame
    rejected: pl.DataFrame | None = None  # columns of REJECTION_SCHEMA


class Stage:
    """Subclass, set ``name``, ``version``, ``Params``, ``roles`` (models it calls) and its wiring
    (``reads``/``writes`` templates and ``scope``, or override :meth:`columns`), and implement
    :meth:`run`. Bump ``version`` whenever the stage's behaviour changes: ``compiler/stage_versions.json``
    records each stage's version with a hash of the code that defines its behaviour, and a test fails
    when that code changes and the version does not (``python -m compiler.stagelock --write``)."""

    name: ClassVar[str]
    version: ClassVar[int] = 1
    Params: ClassVar[type[Params]] = Params
    roles: ClassVar[tuple[str, ...]] = ()  # "teacher" / "student" / "judge": enter the fingerprint
    sandbox: ClassVar[bool] = False  # runs programs (its fingerprint includes the sandbox version)
    embeds: ClassVar[bool] = False   # embeds text with the recipe's `embedder` (its identity enters the fingerprint)
    reads: ClassVar[tuple[str, ...]] = ()
    writes: ClassVar[tuple[str, ...]] = ()
    scope: ClassVar[Scope] = "row"
    method: ClassVar[str | None] = None  # set on registration: the method package it lives in
    storage: ClassVar[Literal["delta", "full"]] = "delta"  # full: its rows do not descend from its input's
    reads_declared_only: ClassVar[bool] = False  # a frame stage handed only the columns it declares (and the row keys)

    def __init__(self, params: Params):
        self.params = params

    @classmethod
    def columns(cls, params: Params) -> Columns:
        """The columns this stage reads and writes with these params."""
        return Columns.of(params, reads=cls.reads, writes=cls.writes)

    @classmethod
    def scope_for(cls, params: Params) -> Scope:
        """``row``, ``task`` or ``frame`` for these params (see the module docstring)."""
        return cls.scope

    @classmethod
    def samples(cls, params: Params) -> bool:
        """Whether the stage draws samples (LLM calls at temperature > 0). Unless its params fix a
        ``seed``, the recipe's ``seed`` then enters its fingerprint and seeds each of its requests."""
        if not cls.roles:
            return False
        temperature = getattr(params, "temperature", None)
        return temperature is None or temperature > 0

    @classmethod
    def expected_requests(cls, params: Params, frame: pl.DataFrame) -> dict[str, int] | None:
        """How many LLM requests per role the stage would send for this input frame, counted
        without sending anything; None when that cannot be known before running (``plan
        --estimate`` then uses history or :meth:`prior_requests`)."""
        return None

    @classmethod
    def prior_requests(cls, params: Params) -> dict[str, tuple[float, float, float]]:
        """Requests per input row per role as (low, expected, high), for ``plan --estimate`` when the
        store has recorded nothing about this stage: ``n`` per row for every role by default."""
        n = float(getattr(params, "n", 1))
        return {role: (n, n, n) for role in cls.roles}

    @classmethod
    def fixed_requests(cls, params: Params) -> dict[str, int] | None:
        """Requests per role that do not depend on the input rows (a stage that writes ``n`` new
        instructions in all), for ``plan --estimate``; None for stages whose requests scale with rows."""
        return None

    @classmethod
    def expected_rows(cls, params: Params, rows: float) -> float | None:
        """How many rows the stage outputs for ``rows`` input rows, when its params say so (for
        ``plan --estimate``); None: history, else the stage's fan-out ``n``."""
        return None

    @classmethod
    def embeds_for(cls, params: Params) -> bool:
        """Whether these params embed text with the recipe's embedder (its identity then enters the
        fingerprint, and the compile checks it loads before writing); by default the class's ``embeds``."""
        return cls.embeds

    @classmethod
    def files(cls, params: Params) -> tuple[tuple[str, str], ...]:
        """(param, path) of the files these params name whose content shapes the output (a prompt
        template, say; relative paths: from the recipe). Their SHA-256 enters the fingerprint, so
        editing one re-runs the stage; a missing one stops planning at that param."""
        return ()

    @classmethod
    def earlier_stages(cls, params: Params) -> tuple[tuple[str, str], ...]:
        """(param, stage name) pairs: earlier stages of the recipe this stage reads by name."""
        return ()

    @classmethod
    def preflight(cls, params: Params, check: "Preflight") -> None:
        """Checks that need the store or the machine rather than the rows, run by ``compile`` before
        it writes anything: raise a :class:`~compiler.errors.DistillcError` to refuse the compile with
        the store unchanged (:mod:`compiler.preflight`). Nothing to check by default."""

    def run(self, frame: pl.DataFrame, ctx: "StageContext") -> StageOutput:
        raise NotImplementedError


REGISTRY: dict[str, type[Stage]] = {}


def register(cls: type[Stage]) -> type[Stage]:
    """Class decorator: adds the stage to the registry under its ``name``; a stage defined in
    ``compiler/methods/<m>/`` belongs to method ``m``."""
    if cls.name in REGISTRY:
        raise RuntimeError(f"stage {cls.name!r} registered twice")
    parts = cls.__module__.split(".")
    cls.method = parts[2] if parts[:2] == ["compiler", "methods"] and len(parts) > 3 else None
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
