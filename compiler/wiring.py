"""The wiring check: before anything runs, every column a stage reads must be written by the
sources or an earlier stage, and every earlier stage a stage names must exist.

It walks the recipe's stages in order with the set of columns the frame will have: the task
columns of the sources, then each stage's declared writes (a stage whose output replaces the frame,
like ``format``, starts the set again). The first problem is a :class:`~compiler.errors.RecipeError`
naming the recipe file and line, the stage, the column and the nearest existing column. It runs
inside :func:`compiler.recipe.loader.load_recipe`, so ``plan`` and ``compile`` stop before any LLM
call, sandbox run or store write.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any

from compiler.stages.base import TASK_COLUMNS, Column, Columns

if TYPE_CHECKING:
    from compiler.errors import RecipeError
    from compiler.recipe.loader import LoadedRecipe


def stage_columns(cls: Any, params: Any) -> Columns:
    """``cls.columns(params)``; a template problem becomes ValueError with the stage's words."""
    return cls.columns(params)


def check_wiring(loaded: "LoadedRecipe") -> None:
    from compiler.stages import load_all

    registry = load_all()
    written: dict[str, str] = {c: "the sources" for c in TASK_COLUMNS}
    earlier: list[str] = []
    for i, (cfg, params) in enumerate(zip(loaded.recipe.stages, loaded.stage_params)):
        cls = registry[cfg.uses]
        where = _Where(loaded, i, cfg)
        try:
            cols = stage_columns(cls, params)
        except ValueError as exc:
            raise where.error(f"{where.stage}: {exc}", None) from None
        for param, name in cls.earlier_stages(params):
            if name not in earlier:
                raise where.error(f"{where.stage} names stage {name!r}, which does not run before it"
                                  + _hint(name, earlier, "earlier stages"), param)
        for col in cols.reads:
            if col.name not in written:
                raise where.missing(col, written)
        if cols.any_of and not any(c.name in written for c in cols.any_of):
            names = ", ".join(repr(c.name) for c in cols.any_of)
            raise where.error(f"{where.stage} reads any of {names}, and no earlier stage writes one"
                              + _hint(cols.any_of[0].name, written, "columns"), cols.any_of[0].param)
        if cols.replaces:
            written = {}
        written.update({c.name: cfg.label for c in cols.writes})
        earlier.append(cfg.label)


class _Where:
    """Builds located errors for stage ``i`` of the recipe."""

    def __init__(self, loaded: "LoadedRecipe", i: int, cfg: Any):
        self.loaded, self.i, self.cfg = loaded, i, cfg
        label = cfg.label
        self.stage = f"stage {label!r}" + (f" ({cfg.uses})" if label != cfg.uses else "")

    def error(self, message: str, param: str | None) -> "RecipeError":
        loc: tuple[Any, ...] = ("stages", self.i)
        if param is not None and param in self.cfg.with_:
            loc += ("with", param)
        return self.loaded.error(message, loc)

    def missing(self, col: Column, written: dict[str, str]) -> "RecipeError":
        return self.error(f"{self.stage} reads column {col.name!r}, which no earlier stage writes"
                          + _hint(col.name, written, "columns"), col.param)


def _hint(name: str, known: Any, what: str) -> str:
    options = sorted(known)
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.5)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f" ({what}: {', '.join(options)})" if options and len(options) <= 12 else ""
