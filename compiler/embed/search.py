"""Nearest neighbours by cosine over unit vectors.

Two ways were measured (``bench/retrieval.py``): DuckDB's ``array_cosine_similarity`` over a
fixed-size ``FLOAT[dim]`` array column, and a vectorised numpy scan (one matrix product for a batch of
queries, then a partial sort). The numpy scan is the faster one by a wide margin once the matrix is in
memory, so it is what :func:`top_k` does; :func:`duckdb_top_k` stays for the benchmark.
"""

from __future__ import annotations

import numpy as np

QUERY_CHUNK = 256   # queries per matrix product: bounds memory at QUERY_CHUNK x rows scores


def top_k(matrix: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """For each query row, the indices and cosine scores of its ``k`` nearest rows of ``matrix``,
    best first (ties: the lower index first). Both inputs hold unit rows."""
    n = matrix.shape[0]
    k = min(k, n)
    if k == 0 or queries.shape[0] == 0:
        empty = np.zeros((queries.shape[0], 0))
        return empty.astype(np.int64), empty.astype(np.float32)
    indices, scores = [], []
    for start in range(0, queries.shape[0], QUERY_CHUNK):
        sims = queries[start:start + QUERY_CHUNK] @ matrix.T
        idx = np.argpartition(-sims, k - 1, axis=1)[:, :k] if k < n else np.tile(np.arange(n), (sims.shape[0], 1))
        part = np.take_along_axis(sims, idx, axis=1)
        order = np.lexsort((idx, -part), axis=1)
        indices.append(np.take_along_axis(idx, order, axis=1))
        scores.append(np.take_along_axis(part, order, axis=1))
    return np.concatenate(indices), np.concatenate(scores).astype(np.float32)


def duckdb_top_k(con, table: str, column: str, dim: int, query: np.ndarray, k: int) -> list[tuple[str, float]]:
    """The same search in SQL: ``array_cosine_similarity`` over ``column`` cast to ``FLOAT[dim]``
    (``table`` needs a ``module_id`` column)."""
    return con.execute(
        f"SELECT module_id, array_cosine_similarity({column}::FLOAT[{dim}], ?::FLOAT[{dim}]) AS score "
        f"FROM {table} ORDER BY score DESC, module_id LIMIT {int(k)}", [query.tolist()]).fetchall()
