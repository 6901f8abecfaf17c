"""Duplicate detection that holds no per-row index in memory: MinHash signatures, their LSH band keys
and exact-text hashes go to temporary DuckDB tables a batch at a time, candidate pairs come from a
join on band keys, and the keep-the-first decisions are taken in row order a chunk of rows at a time.

The decisions are those of a sequential scan with an in-memory LSH index (datasketch's, with the
same bands): row ``j`` is an exact duplicate when an earlier row has the same normalised text (in
its scope); otherwise it is a near duplicate when some earlier *kept* row shares an LSH band with it
and their MinHash Jaccard estimate reaches the threshold (the best such row is named: the highest
estimate, then the earliest). Rows without tokens are never compared.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable

import numpy as np
import pyarrow as pa

if TYPE_CHECKING:
    import duckdb

BATCH = 5_000
CHUNK = 20_000


@dataclass(frozen=True)
class Settings:
    threshold: float
    num_perm: int
    seed: int
    shingle: int
    exact: bool
    near: bool


def bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows per band) datasketch picks for a looser threshold (better recall; at least two
    bands), as the in-memory index did."""
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=min(0.9 * threshold, 0.9), num_perm=num_perm)
    return lsh.b, lsh.r


def _key64(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big", signed=True)


class DuplicateFinder:
    """Feed rows in order (:meth:`add`), then :meth:`verdicts` gives, per row, None (kept) or
    ``(reason, detail)``. Works in temporary tables of ``con``."""

    def __init__(self, con: "duckdb.DuckDBPyConnection", settings: Settings,
                 shingles: Callable[[list[str]], set[bytes]], name_of: Callable[[int], str]):
        self.con, self.s, self.shingles, self.name_of = con, settings, shingles, name_of
        self.b, self.r = bands(settings.threshold, settings.num_perm)
        self.n = 0
        self._perms = None
        con.execute("CREATE OR REPLACE TEMP TABLE _dd_rows (pos BIGINT, scope VARCHAR, h BIGINT, sig BLOB)")
        con.execute("CREATE OR REPLACE TEMP TABLE _dd_bands (pos BIGINT, scope VARCHAR, band INTEGER, k BIGINT)")

    def add(self, tokens: Iterable[list[str]], scopes: Iterable[str]) -> None:
        rows: dict[str, list] = {"pos": [], "scope": [], "h": [], "sig": []}
        band_rows: dict[str, list] = {"pos": [], "scope": [], "band": [], "k": []}
        for toks, scope in zip(tokens, scopes):
            pos, self.n = self.n, self.n + 1
            if not toks:
                continue
            sig = self._signature(toks) if self.s.near else None
            rows["pos"].append(pos), rows["scope"].append(scope)
            rows["h"].append(_key64(" ".join(toks).encode()))
            rows["sig"].append(sig.tobytes() if sig is not None else None)
            if sig is not None:
                for band in range(self.b):
                    band_rows["pos"].append(pos), band_rows["scope"].append(scope), band_rows["band"].append(band)
                    band_rows["k"].append(_key64(sig[band * self.r:(band + 1) * self.r].tobytes()))
            if len(rows["pos"]) >= BATCH:
                self._flush(rows, band_rows)
        self._flush(rows, band_rows)

    def _signature(self, toks: list[str]) -> np.ndarray:
        from datasketch import MinHash

        if self._perms is None:       # the same permutations for every row (drawing them costs more than hashing)
            first = MinHash(num_perm=self.s.num_perm, seed=self.s.seed)
            self._perms = (first.permutations, first.scheme)
        mh = MinHash(num_perm=self.s.num_perm, seed=self.s.seed, permutations=self._perms[0], scheme=self._perms[1])
        mh.update_batch(sorted(self.shingles(toks)))
        return np.asarray(mh.hashvalues, dtype=np.uint32)      # datasketch's values fit in 32 bits

    def _flush(self, rows: dict[str, list], band_rows: dict[str, list]) -> None:
        for table, data in (("_dd_rows", rows), ("_dd_bands", band_rows)):
            if data["pos"]:
                self.con.register("_dd_batch", pa.table(data))
                self.con.execute(f"INSERT INTO {table} SELECT * FROM _dd_batch")
                self.con.unregister("_dd_batch")
                for column in data.values():
                    column.clear()

    def verdicts(self) -> list[tuple[str, str] | None]:
        out: list[tuple[str, str] | None] = [None] * self.n
        dup = self._exact(out) if self.s.exact else np.zeros(self.n, dtype=bool)
        if self.s.near:
            self._near(out, dup)
        self.con.execute("DROP TABLE IF EXISTS _dd_rows")
        self.con.execute("DROP TABLE IF EXISTS _dd_bands")
        return out

    def _exact(self, out: list) -> np.ndarray:
        dup = np.zeros(self.n, dtype=bool)
        for pos, first in self.con.execute(
                "SELECT pos, first FROM (SELECT pos, min(pos) OVER (PARTITION BY scope, h) AS first FROM _dd_rows) "
                "WHERE pos > first ORDER BY pos").fetchall():
            dup[pos] = True
            out[pos] = ("duplicate", f"same text as kept row {self.name_of(first)}")
        return dup

    def _near(self, out: list, dup: np.ndarray) -> None:
        """Candidate pairs (earlier i, later j) sharing a band, decided in order of j."""
        self.con.register("_dd_dup", pa.table({"pos": np.flatnonzero(dup).astype(np.int64)}))
        self.con.execute(
            "CREATE OR REPLACE TEMP TABLE _dd_pairs AS SELECT DISTINCT a.pos AS j, b.pos AS i FROM _dd_bands a "
            "JOIN _dd_bands b ON a.scope = b.scope AND a.band = b.band AND a.k = b.k AND b.pos < a.pos "
            "WHERE a.pos NOT IN (SELECT pos FROM _dd_dup) AND b.pos NOT IN (SELECT pos FROM _dd_dup)")
        self.con.unregister("_dd_dup")
        kept = ~dup
        for lo in range(0, self.n, CHUNK):
            pairs = self.con.execute("SELECT j, i FROM _dd_pairs WHERE j >= ? AND j < ? ORDER BY j, i",
                                     [lo, lo + CHUNK]).fetchnumpy()
            if len(pairs["j"]):
                self._decide(pairs["j"], pairs["i"], kept, out)
        self.con.execute("DROP TABLE IF EXISTS _dd_pairs")

    def _signatures(self, positions: np.ndarray) -> np.ndarray:
        """The signature matrix of ``positions`` (sorted, distinct), one row each."""
        self.con.register("_dd_want", pa.table({"pos": positions}))
        rows = self.con.execute("SELECT r.pos, r.sig FROM _dd_rows r JOIN _dd_want w ON r.pos = w.pos "
                                "ORDER BY r.pos").fetchall()
        self.con.unregister("_dd_want")
        return np.stack([np.frombuffer(sig, dtype=np.uint32) for _, sig in rows])

    def _decide(self, js: np.ndarray, is_: np.ndarray, kept: np.ndarray, out: list) -> None:
        """Jaccard estimates of every pair at once, then the decisions in order of j."""
        ids = np.unique(np.concatenate([js, is_]))
        sigs = self._signatures(ids)
        jac = (sigs[np.searchsorted(ids, js)] == sigs[np.searchsorted(ids, is_)]).mean(axis=1)
        start = 0
        while start < len(js):
            j, end = int(js[start]), start
            best: tuple[float, int] | None = None
            while end < len(js) and js[end] == j:
                i = int(is_[end])
                if kept[i] and (best is None or (jac[end], -i) > (best[0], -best[1])):
                    best = (float(jac[end]), i)
                end += 1
            if best is not None and best[0] >= self.s.threshold:
                kept[j] = False
                out[j] = ("near_duplicate", f"Jaccard ~{best[0]:.2f} with kept row {self.name_of(best[1])}")
            start = end
