"""``dedup``: drop exact and near-duplicate rows, keeping the first occurrence."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Iterable, Literal

import duckdb
import polars as pl
from pydantic import Field

from compiler.errors import DistillcError
from compiler.stages.base import Columns, Params, Scope, Stage, StageOutput, register, rejections
from compiler.stages.dedup_index import BATCH, DuplicateFinder, Settings

if TYPE_CHECKING:
    from compiler.runner import StageContext

_TOKEN = re.compile(r"\w+|[^\w\s]")
_DETAIL = "_dedup_detail"


def tokens(text: str) -> list[str]:
    """Lower-cased word and code tokens: identifiers/numbers and single punctuation marks, so
    ``f(x)`` and ``f( x )`` tokenise alike."""
    return _TOKEN.findall(text.lower())


def present_columns(frame: pl.DataFrame, wanted: Iterable[str], stage: str) -> list[str]:
    """The wanted columns this frame has (a stage may run before or after code extraction); an
    error when it has none of them."""
    wanted = list(wanted)
    found = [c for c in wanted if c in frame.columns]
    if not found:
        raise DistillcError(f"stage {stage!r}: none of the columns {wanted} exist here "
                            f"(columns: {', '.join(frame.columns)})")
    return found


def row_texts(frame: pl.DataFrame, columns: list[str]) -> list[str]:
    """Each row's text over ``columns`` (nulls as empty), joined with a separator line."""
    parts = [pl.col(c).cast(pl.String).fill_null("") for c in columns]
    return frame.select(pl.concat_str(parts, separator="\n\u241e\n").alias("t"))["t"].to_list()


def _shingles(toks: list[str], size: int) -> set[bytes]:
    if len(toks) <= size:
        return {" ".join(toks).encode()} if toks else set()
    return {" ".join(toks[i:i + size]).encode() for i in range(len(toks) - size + 1)}


@register
class Dedup(Stage):
    """Drops duplicate rows, keeping the first occurrence of each.

    Exact duplicates (reason ``duplicate``): equal after lower-casing and collapsing whitespace.
    Near duplicates (reason ``near_duplicate``): MinHash LSH over token shingles, confirmed by the
    MinHash Jaccard estimate reaching ``threshold``. Both compare the text of ``columns`` (those
    present: the instruction and, after extraction, the code). ``scope: task`` only compares rows of
    the same task (samples of one prompt); ``global`` compares all rows. The detail names the row
    kept. Rows whose columns are all empty are kept untouched.
    """

    name = "dedup"
    version = 1
    scope = "frame"
    reads_declared_only = True    # the columns it compares; its output rows are its input rows

    class Params(Params):
        columns: list[str] = Field(default_factory=lambda: ["instruction", "code"],
                                   description="columns compared (those present in the frame)")
        scope: Literal["global", "task"] = Field(default="global", description="compare all rows, "
                                                 "or only rows of the same task_id")
        exact: bool = Field(default=True, description="drop exact duplicates")
        near: bool = Field(default=True, description="drop near duplicates (MinHash LSH)")
        threshold: float = Field(default=0.85, gt=0, lt=1, description="Jaccard similarity of near duplicates")
        shingle: int = Field(default=3, ge=1, description="tokens per shingle")
        num_perm: int = Field(default=128, ge=16, le=1024, description="MinHash permutations")
        seed: int = Field(default=1, description="MinHash seed")

    @classmethod
    def columns(cls, params: "Dedup.Params") -> Columns:
        return Columns.of(params, any_of=("{columns}",))

    @classmethod
    def scope_for(cls, params: "Dedup.Params") -> Scope:
        return "task" if params.scope == "task" else "frame"

    def run(self, frame: pl.DataFrame, ctx: "StageContext") -> StageOutput:
        p = self.params
        columns = present_columns(frame, p.columns, self.name)
        if frame.is_empty():
            return StageOutput(frame, None)
        row_ids, task_ids = frame["row_id"], frame["task_id"]
        store = getattr(ctx, "store", None)             # its temporary tables spill beside the store
        con = store.con if store is not None else duckdb.connect()
        finder = DuplicateFinder(con, Settings(p.threshold, p.num_perm, p.seed, p.shingle, p.exact, p.near),
                                 lambda toks: _shingles(toks, p.shingle),
                                 lambda pos: f"{row_ids[pos]} (task {task_ids[pos]})")
        with ctx.progress(frame.height, self.name) as bar:
            for part in frame.iter_slices(BATCH):
                scopes = part["task_id"].to_list() if p.scope == "task" else [""] * part.height
                finder.add((tokens(t) for t in row_texts(part, columns)), scopes)
                bar.update(part.height)
        verdicts = finder.verdicts()
        marked = frame.with_columns(pl.Series("_reason", [v[0] if v else None for v in verdicts], dtype=pl.String),
                                    pl.Series(_DETAIL, [v[1] if v else None for v in verdicts], dtype=pl.String))
        dropped = marked.filter(pl.col("_reason").is_not_null())
        kept = marked.filter(pl.col("_reason").is_null()).drop("_reason", _DETAIL)
        return StageOutput(kept, rejections(dropped, pl.col("_reason"), pl.col(_DETAIL)))
