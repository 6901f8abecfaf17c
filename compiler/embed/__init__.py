"""Sentence embeddings, shared by every stage that compares texts by meaning (AMR-Evol's module
retrieval and database growth, embedding decontamination; SODA's cosine dedup).

- :mod:`.models`: the embedding models (the embedded all-MiniLM-L6-v2 by default, any
  sentence-transformers model, an OpenAI-compatible ``/v1/embeddings`` endpoint);
- :mod:`.cache`: vectors cached in the store by (embedder, text), like LLM answers;
- :mod:`.search`: nearest neighbours by cosine (a vectorised numpy scan; see ``bench/retrieval.py``).

:class:`Embeddings` is what callers use: vectors for texts, each text embedded once per embedder
(the model is loaded only when a text is missing from the cache), counted in ``computed`` (texts a
model embedded) and ``cached`` (texts read from the store). The recipe's ``embedder:`` section
configures it (:class:`compiler.recipe.schema.EmbedderConfig`); its identity enters the fingerprint of
every stage that embeds.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from compiler.embed import cache
from compiler.embed.models import EmbedderError, Encoder, check, make_encoder

if TYPE_CHECKING:
    from compiler.recipe.schema import EmbedderConfig
    from compiler.store.db import Store


class Embeddings:
    """One embedder bound to a store's cache (None: no cache). Not thread-safe."""

    def __init__(self, config: "EmbedderConfig", store: "Store | None" = None, base_dir: Path | None = None,
                 encoder: Encoder | None = None):
        self.config, self.store, self.base_dir = config, store, base_dir
        self._encoder = encoder
        self.computed = 0
        self.cached = 0

    @property
    def key(self) -> str:
        return self.config.key

    def encoder(self) -> Encoder:
        if self._encoder is None:
            self._encoder = make_encoder(self.config, self.base_dir)
        return self._encoder

    def vectors(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors for ``texts`` (in order), one row each; each distinct text missing from the
        cache is embedded once (in batches) and stored."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        keys = [cache.text_key(t) for t in texts]
        known = cache.lookup(self.store, self.key, keys) if self.store is not None else {}
        missing = list(dict.fromkeys(k for k in keys if k not in known))
        if missing:
            text_of = dict(zip(keys, texts))
            fresh = self.encoder().encode([text_of[k] for k in missing])
            self.computed += len(missing)
            if self.store is not None:
                cache.insert(self.store, self.config, missing, fresh)
            known.update(zip(missing, fresh))
        self.cached += len(set(keys)) - len(missing)
        return np.stack([known[k] for k in keys]).astype(np.float32, copy=False)

    def close(self) -> None:
        close = getattr(self._encoder, "close", None)
        if close is not None:
            close()


__all__ = ["Embeddings", "EmbedderError", "check", "make_encoder"]
