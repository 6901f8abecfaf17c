"""``retrieve_modules``: the database modules most similar to each spec (METHODS §2(b) A4, §2(h)-2).

Specs are embedded as signature + description, modules as signature + docstring, both with the
recipe's embedder; modules are ranked by cosine (:class:`compiler.moduledb.ModuleIndex`, the search
``distillc modules search`` uses). The database grows between compiles, so each output row records
the horizon it saw (``db_horizon``): the corpus version says which modules it could see, and its
stored output is what a rerun returns.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Literal

import polars as pl
from pydantic import Field

from compiler.errors import DistillcError
from compiler.moduledb import ModuleIndex
from compiler.moduledb.records import ModuleText, functions_in
from compiler.stages.base import Columns, Params, Stage, StageOutput, derive_id, parent_link, register
from compiler.store import modules as db

if TYPE_CHECKING:
    from compiler.preflight import Preflight
    from compiler.runner import StageContext

Origin = Literal["seed", "evolved", "imported"]
ADDING = {"seed_modules", "grow_modules"}


def too_small(have: int, params: "RetrieveModules.Params", where: str) -> DistillcError:
    kind = "verified modules" if params.verified_only else "modules"
    return DistillcError(f"{where}: the module database holds {have} {kind}"
                         + (f" of origin {', '.join(params.origins)}" if params.origins else "")
                         + f", fewer than top_k={params.top_k}; add some (`distillc modules import FILE.jsonl`, "
                         "or a `seed_modules` stage before it) or lower top_k")


@register
class RetrieveModules(Stage):
    """For each row, the ``top_k`` database modules nearest to each of its specs (``query: specs``), or
    to each function of its code (``query: code``, the ablation without decomposition: the whole code
    when it defines none), by cosine; deduplicated over the row's queries (best score kept), at least
    ``min_score`` when set, and at most ``max_modules``, best first. Each row becomes a retrieval row
    (parent: its input row) with ``retrieved`` (JSON list of {module_id, name, signature, code, score,
    query}), ``n_retrieved``, ``n_queries`` and ``db_horizon``. Drops nothing. A database holding fewer
    than ``top_k`` modules is an error, before the compile writes anything when it can be known then."""

    name = "retrieve_modules"
    version = 1
    embeds = True
    writes = ("retrieved", "n_retrieved", "n_queries", "db_horizon")

    class Params(Params):
        query: Literal["specs", "code"] = Field(default="specs", description="what is embedded as queries: each "
                                                "spec (signature + description), or each function of `code`")
        code: str = Field(default="code", description="code column (query: code)")
        top_k: int = Field(default=1, ge=1, description="modules per query (AMR-Evol's examples: 1)")
        max_modules: int = Field(default=5, ge=1, description="modules kept per row after deduplication")
        min_score: float | None = Field(default=None, ge=-1, le=1, description="keep only modules at least this similar")
        verified_only: bool = Field(default=True, description="only modules whose tests passed (the paper's pre-validated modules)")
        origins: list[Origin] | None = Field(default=None, description="only modules of these origins (default: all)")
        module_text: ModuleText = Field(default="signature_docstring", description="what modules are embedded as: "
                                        "`signature_docstring`, or `with_code` (the whole module)")

    @classmethod
    def columns(cls, params: "RetrieveModules.Params") -> Columns:
        reads = ("specs",) if params.query == "specs" else ("{code}",)
        return Columns.of(params, reads=reads, writes=cls.writes)

    @classmethod
    def preflight(cls, params: "RetrieveModules.Params", check: "Preflight") -> None:
        """A database too small for ``top_k`` stops the compile before anything is written, unless a
        stage that adds modules runs before this one."""
        store = check.store()
        if check.cached(check.step) or check.pending_before(ADDING):
            return
        have = db.count(store, verified_only=params.verified_only, origins=params.origins) if store else 0
        if have < params.top_k:
            raise too_small(have, params, check.label())

    def run(self, frame: pl.DataFrame, ctx: "StageContext") -> StageOutput:
        p = self.params
        embeddings = ctx.embeddings()
        index = ModuleIndex.load(ctx.store, embeddings, verified_only=p.verified_only, origins=p.origins,
                                 text=p.module_text)
        if len(index) < p.top_k:
            raise too_small(len(index), p, f"stage {self.name!r}")
        queries = [self._queries(row) for row in frame.iter_rows(named=True)]
        flat = [q for qs in queries for q in qs]
        hits = index.search(embeddings.vectors([q[1] for q in flat]), p.top_k) if flat else []
        retrieved, at = [], 0
        for qs in queries:
            retrieved.append(self._select(index, qs, hits[at:at + len(qs)]))
            at += len(qs)
        out = frame.with_columns(
            parent_link(), pl.Series("row_id", [derive_id(r, self.name) for r in frame["row_id"]], dtype=pl.String),
            pl.Series("retrieved", [json.dumps(r, ensure_ascii=False) for r in retrieved], dtype=pl.String),
            pl.Series("n_retrieved", [len(r) for r in retrieved], dtype=pl.Int64),
            pl.Series("n_queries", [len(q) for q in queries], dtype=pl.Int64),
            pl.lit(index.horizon, dtype=pl.Int64).alias("db_horizon"))
        return StageOutput(out)

    def _queries(self, row: dict[str, Any]) -> list[tuple[str, str]]:
        """(label, text) of each query of a row."""
        if self.params.query == "specs":
            return [(s["name"], f"{s['signature']}\n{s['description']}".strip()) for s in json.loads(row["specs"])]
        code = row[self.params.code] or ""
        found = [f.module for f in functions_in(code) if f.module is not None]
        return [(m.name, m.text()) for m in found] or [("code", code.strip())]

    def _select(self, index: ModuleIndex, queries: list[tuple[str, str]], hits: list) -> list[dict[str, Any]]:
        best: dict[str, dict[str, Any]] = {}
        frame = index.frame
        for (label, _), row_hits in zip(queries, hits):
            for i, score in row_hits:
                if self.params.min_score is not None and score < self.params.min_score:
                    continue
                mid = frame["module_id"][i]
                if mid not in best or score > best[mid]["score"]:
                    best[mid] = {"module_id": mid, "name": frame["name"][i], "signature": frame["signature"][i],
                                 "code": frame["code"][i], "score": round(score, 6), "query": label, "_row": i}
        chosen = sorted(best.values(), key=lambda h: (-h["score"], h["_row"]))[: self.params.max_modules]
        return [{k: v for k, v in h.items() if k != "_row"} for h in chosen]
