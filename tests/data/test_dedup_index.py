"""The out-of-core duplicate finder decides exactly as a sequential scan over an in-memory LSH
index does (the reference below, written with datasketch's own index), on texts with many exact
and near duplicates, in both scopes."""

from __future__ import annotations

import hashlib
import random

import duckdb
import pytest

from compiler.stages.dedup import _shingles, tokens
from compiler.stages.dedup_index import DuplicateFinder, Settings

WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho".split()


def texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    bases = [" ".join(rng.choice(WORDS) for _ in range(30)) for _ in range(n // 5)]
    out = []
    for _ in range(n):
        base = rng.choice(bases).split()
        for _ in range(rng.choice((0, 0, 1, 2, 8))):            # exact copies, small and large edits
            base[rng.randrange(len(base))] = rng.choice(WORDS)
        out.append(" ".join(base) if rng.random() > 0.02 else "")
    return out


def reference(items: list[list[str]], scopes: list[str], s: Settings) -> list:
    """The sequential scan with datasketch's MinHashLSH (one index per scope, kept rows only)."""
    from datasketch import MinHash, MinHashLSH

    first, indexes, hashes, out = {}, {}, {}, []
    for pos, (toks, scope) in enumerate(zip(items, scopes)):
        if not toks:
            out.append(None)
            continue
        key = (scope, hashlib.sha256(" ".join(toks).encode()).hexdigest())
        if s.exact and key in first:
            out.append(("duplicate", first[key]))
            continue
        first.setdefault(key, pos)
        if not s.near:
            out.append(None)
            continue
        mh = MinHash(num_perm=s.num_perm, seed=s.seed)
        mh.update_batch(sorted(_shingles(toks, s.shingle)))
        lsh = indexes.setdefault(scope, MinHashLSH(threshold=min(0.9 * s.threshold, 0.9), num_perm=s.num_perm))
        best = max(((c, mh.jaccard(hashes[c])) for c in lsh.query(mh)), key=lambda x: (x[1], -x[0]), default=None)
        if best is not None and best[1] >= s.threshold:
            out.append(("near_duplicate", best[0]))
            continue
        lsh.insert(pos, mh)
        hashes[pos] = mh
        out.append(None)
    return out


@pytest.mark.parametrize("scoped,exact,near", [(False, True, True), (True, True, True), (False, False, True),
                                               (False, True, False)])
def test_same_decisions_as_a_sequential_in_memory_index(scoped, exact, near):
    raw = texts(1500)
    items = [tokens(t) for t in raw]
    scopes = [f"t{i % 7}" if scoped else "" for i in range(len(items))]
    s = Settings(threshold=0.8, num_perm=64, seed=1, shingle=3, exact=exact, near=near)
    finder = DuplicateFinder(duckdb.connect(), s, lambda toks: _shingles(toks, 3), lambda pos: str(pos))
    for lo in range(0, len(items), 400):                  # fed in batches, as the stage does
        finder.add(items[lo:lo + 400], scopes[lo:lo + 400])
    got = [(v[0], int(v[1].rsplit(" ", 1)[1])) if v else None for v in finder.verdicts()]
    want = reference(items, scopes, s)
    assert got == want
    assert sum(1 for v in want if v and v[0] == "near_duplicate") > (50 if near else -1)
    assert sum(1 for v in want if v and v[0] == "duplicate") > (50 if exact else -1)
