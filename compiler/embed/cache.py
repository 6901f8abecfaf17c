"""The embedding cache in the store: one unit vector per (embedder, sha256 of the text), written in
bulk in one transaction, read in bulk in one query; and the ``embedders`` table, which remembers how to
load an embedder whose vectors are stored."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

if TYPE_CHECKING:
    from compiler.recipe.schema import EmbedderConfig
    from compiler.store.db import Store


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def lookup(store: "Store", embedder: str, keys: list[str]) -> dict[str, np.ndarray]:
    """The cached vectors among ``keys`` (missing keys are absent)."""
    if not keys or not store.table_exists("embedding_cache"):
        return {}
    table = store.con.sql(
        "SELECT c.text_key, c.vector FROM embedding_cache c JOIN (SELECT unnest(?::VARCHAR[]) AS text_key) k "
        "USING (text_key) WHERE c.embedder = ?", params=[list(set(keys)), embedder]).to_arrow_table()
    if table.num_rows == 0:
        return {}
    found = table.column("text_key").to_pylist()
    vectors = matrix_of(table.column("vector"))
    return dict(zip(found, vectors))


def matrix_of(column: "pa.ChunkedArray | pa.Array") -> np.ndarray:
    """A list<float> arrow column of equal-length rows as a (rows, dim) float32 matrix."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if len(array) == 0:
        return np.zeros((0, 0), dtype=np.float32)
    flat = array.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    return flat.reshape(len(array), -1)


def insert(store: "Store", config: "EmbedderConfig", keys: list[str], vectors: np.ndarray) -> None:
    """Add vectors (and the embedder's row, once) in one transaction; existing keys are kept."""
    if not keys or store.read_only:
        return
    table = pa.table({"text_key": keys, "vector": pa.array(list(vectors.astype(np.float32)),
                                                            type=pa.list_(pa.float32()))})
    with store.transaction() as con:
        con.execute("INSERT OR IGNORE INTO embedders VALUES (?, ?, ?, now())",
                    [config.key, json.dumps(config.model_dump(mode="json")), int(vectors.shape[1])])
        con.register("_vectors", table)
        con.execute("INSERT OR IGNORE INTO embedding_cache SELECT ?, text_key, vector, now() FROM _vectors",
                    [config.key])
        con.unregister("_vectors")


def stored_config(store: "Store", key: str) -> dict | None:
    """The config an embedder was recorded with."""
    rows = store.con.execute("SELECT config FROM embedders WHERE key = ?", [key]).fetchall()
    return json.loads(rows[0][0]) if rows else None
