"""The module database: verified Python functions stored with their tests, origin and embedding, for
AMR-Evol's retrieval (METHODS §2(b) A2/A4/A6) and for ``distillc modules``.

- :mod:`.records`: what a module is, how functions are taken out of code (with the imports they
  use, refusing those that do not run in isolation) and the sandbox job that verifies one;
- :mod:`.library`: a user's own library file (JSONL) read, verified and imported;
- :mod:`compiler.store.modules`: the queries.

:class:`ModuleIndex` is the one search both the ``retrieve_modules`` stage and ``distillc modules
search`` use: the modules up to a horizon, embedded as signature + docstring by the given embedder,
ranked by cosine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np
import polars as pl

from compiler.embed.search import top_k
from compiler.moduledb.records import Module, ModuleText, module_text
from compiler.store import modules as db

if TYPE_CHECKING:
    from compiler.embed import Embeddings
    from compiler.store.db import Store


@dataclass(frozen=True)
class ModuleIndex:
    frame: pl.DataFrame          # module_id, name, signature, docstring, code, verified, origin, ... in seq order
    matrix: np.ndarray           # one unit row per module
    horizon: int                 # the highest seq it saw

    @classmethod
    def load(cls, store: "Store", embeddings: "Embeddings", *, upto: int | None = None,
             verified_only: bool = False, origins: Sequence[str] | None = None,
             text: ModuleText = "signature_docstring") -> "ModuleIndex":
        """The modules up to ``upto`` (default: all of them now) with their vectors: the stored
        embedding when this embedder made it, else through the embedding cache."""
        upto = db.horizon(store) if upto is None else upto
        frame = db.listing(store, upto, verified_only, origins, with_code=True)
        if frame.is_empty():
            return cls(frame, np.zeros((0, 0), dtype=np.float32), upto)
        ids = frame["module_id"].to_list()
        stored = db.vectors(store, ids, embeddings.key) if text == "signature_docstring" else {}
        missing = [i for i, m in enumerate(ids) if m not in stored]
        if missing:
            rows = frame[missing].to_dicts()
            fresh = embeddings.vectors([module_text(r["signature"], r["docstring"], r["code"], text) for r in rows])
            stored.update(zip((r["module_id"] for r in rows), fresh))
        return cls(frame, np.stack([stored[m] for m in ids]).astype(np.float32), upto)

    def __len__(self) -> int:
        return self.frame.height

    def without(self, added_fp: str) -> "ModuleIndex":
        """The same index without the modules the stage output ``added_fp`` added."""
        if self.frame.is_empty():
            return self
        keep = (self.frame["added_fp"] != added_fp).fill_null(True)
        return ModuleIndex(self.frame.filter(keep), self.matrix[keep.to_numpy()], self.horizon)

    def search(self, queries: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        """For each query vector, its ``k`` nearest modules as (row in ``frame``, cosine), best first."""
        idx, scores = top_k(self.matrix, queries, k)
        return [[(int(i), float(s)) for i, s in zip(ri, rs)] for ri, rs in zip(idx, scores)]


def add_modules(store: "Store", embeddings: "Embeddings", modules: Sequence[Module],
                added_fp: str | None) -> list[str]:
    """Embed (cached) and insert modules not yet in the database; returns the ids added."""
    if not modules:
        return []
    vectors = embeddings.vectors([m.text() for m in modules])
    return db.insert(store, modules, vectors, embeddings.key, added_fp)


__all__ = ["Module", "ModuleIndex", "add_modules"]
