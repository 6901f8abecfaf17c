"""``dedup``: drop exact and near-duplicate rows, keeping the first occurrence."""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Iterable, Literal

import polars as pl
from pydantic import Field

from compiler.errors import DistillcError
from compiler.stages.base import Columns, Params, Scope, Stage, StageOutput, register, rejections

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
        columns = present_columns(frame, self.params.columns, self.name)
        texts = row_texts(frame, columns)
        scopes = frame["task_id"].to_list() if self.params.scope == "task" else [""] * frame.height
        with ctx.progress(frame.height, self.name) as bar:
            names = [f"{r} (task {t})" for r, t in zip(frame["row_id"].to_list(), frame["task_id"].to_list())]
            verdicts = self._verdicts(texts, scopes, names, bar)
        reasons = [v[0] if v else None for v in verdicts]
        marked = frame.with_columns(pl.Series("_reason", reasons, dtype=pl.String),
                                    pl.Series(_DETAIL, [v[1] if v else None for v in verdicts], dtype=pl.String))
        dropped = marked.filter(pl.col("_reason").is_not_null())
        kept = marked.filter(pl.col("_reason").is_null()).drop("_reason", _DETAIL)
        return StageOutput(kept, rejections(dropped, pl.col("_reason"), pl.col(_DETAIL)))

    def _verdicts(self, texts: list[str], scopes: list[str], names: list[str], bar) -> list[tuple[str, str] | None]:
        """(reason, detail) for each row to drop, None for each row kept."""
        p = self.params
        first: dict[tuple[str, str], str] = {}
        near = _NearIndex(p.threshold, p.num_perm, p.seed, p.shingle) if p.near else None
        out: list[tuple[str, str] | None] = []
        for text, scope, name in zip(texts, scopes, names):
            bar.update(1)
            toks = tokens(text)
            if not toks:
                out.append(None)
                continue
            key = (scope, hashlib.sha256(" ".join(toks).encode()).hexdigest())
            if p.exact and key in first:
                out.append(("duplicate", f"same text as kept row {first[key]}"))
                continue
            first.setdefault(key, name)
            match = near.match_or_add(scope, len(out), toks) if near is not None else None
            out.append(("near_duplicate", f"Jaccard ~{match[1]:.2f} with kept row {names[match[0]]}")
                       if match else None)
        return out


class _NearIndex:
    """One MinHash LSH index per scope; rows are added in order, so a match is always earlier."""

    def __init__(self, threshold: float, num_perm: int, seed: int, shingle: int):
        self.threshold, self.num_perm, self.seed, self.shingle = threshold, num_perm, seed, shingle
        self.indexes: dict[str, object] = {}
        self.hashes: dict[int, object] = {}

    def match_or_add(self, scope: str, position: int, toks: list[str]) -> tuple[int, float] | None:
        """The earlier row (position, estimated Jaccard) this one nearly duplicates, or None after
        indexing this row."""
        from datasketch import MinHash, MinHashLSH

        mh = MinHash(num_perm=self.num_perm, seed=self.seed)
        mh.update_batch(sorted(_shingles(toks, self.shingle)))
        lsh = self.indexes.get(scope)
        if lsh is None:
            # Candidates come from a looser LSH band setting (better recall; datasketch also needs
            # at least two bands); each is then confirmed by its Jaccard estimate.
            lsh = self.indexes[scope] = MinHashLSH(threshold=min(0.9 * self.threshold, 0.9),
                                                   num_perm=self.num_perm)
        best = max(((c, mh.jaccard(self.hashes[c])) for c in lsh.query(mh)), key=lambda x: (x[1], -x[0]),
                   default=None)
        if best is not None and best[1] >= self.threshold:
            return best
        lsh.insert(position, mh)
        self.hashes[position] = mh
        return None
