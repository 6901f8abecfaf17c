"""Retrieval speed of the module database: embeddings per second of the default embedder, and searches
per second over 10k and 100k modules with the two nearest-neighbour scans that work offline —
DuckDB's ``array_cosine_similarity`` over a fixed-size ``FLOAT[dim]`` column, and a vectorised numpy
scan (what ``compiler.embed.search.top_k`` does) — with the peak memory of the process; and the same
through a real store: the modules inserted into a DuckDB module database, the index loaded from it
(what ``distillc modules search`` and each ``retrieve_modules`` run pay once) and searched.

    .venv/bin/python bench/retrieval.py                 # 10k and 100k modules, k=5
    .venv/bin/python bench/retrieval.py --sizes 1000 --queries 50

The module vectors are random unit vectors of the embedder's dimension (the scan's cost does not depend
on what they hold); the query vectors are real embeddings of module-like descriptions. Goal: a search
over 100k modules in under 50 ms on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from compiler.embed import Embeddings  # noqa: E402
from compiler.embed.search import duckdb_top_k, top_k  # noqa: E402
from compiler.moduledb import ModuleIndex  # noqa: E402
from compiler.moduledb.records import Module  # noqa: E402
from compiler.recipe.schema import EmbedderConfig  # noqa: E402
from compiler.store import modules as db  # noqa: E402
from compiler.store.db import Store  # noqa: E402

TEXTS = ["def count_vowels(text: str) -> int:\nCount the vowels in a string.",
         "def merge_intervals(xs: list[tuple[int, int]]) -> list[tuple[int, int]]:\nMerge overlapping intervals.",
         "def is_prime(n: int) -> bool:\nCheck whether n is a prime number.",
         "def parse_date(s: str) -> tuple[int, int, int]:\nParse a YYYY-MM-DD date."]


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def embed_rate(n: int) -> tuple[float, np.ndarray]:
    """Texts per second of the default embedder (model load excluded), and the vectors."""
    embeddings = Embeddings(EmbedderConfig())
    embeddings.vectors(["warm up"])
    texts = [f"{TEXTS[i % len(TEXTS)]} Variant {i}." for i in range(n)]
    started = time.perf_counter()
    vectors = embeddings.vectors(texts)
    return n / (time.perf_counter() - started), vectors


def timed(fn, repeats: int) -> list[float]:
    out = []
    for i in range(repeats):
        started = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - started)
    return out


def unit_rows(n: int, dim: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    matrix = rng.standard_normal((n, dim)).astype(np.float32)
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def bench_store(n: int, queries: np.ndarray, k: int) -> dict:
    """A real module database of ``n`` modules: insert, load the index from the store, search."""
    matrix = unit_rows(n, queries.shape[1])
    modules = [Module(f"f{i}", f"def f{i}(x: int) -> int:", f"Module {i}.",
                      f"def f{i}(x: int) -> int:\n    return x + {i}\n", (f"assert f{i}(0) == {i}",),
                      "imported", None, True) for i in range(n)]
    key = EmbedderConfig().key
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "store.duckdb")
        started = time.perf_counter()
        with Store.open(path) as store:
            db.insert(store, modules, matrix, key, None)
        insert_s = time.perf_counter() - started
        started = time.perf_counter()
        with Store.open_readonly(path) as store:
            index = ModuleIndex.load(store, Embeddings(EmbedderConfig(), store))
        load_s = time.perf_counter() - started
    assert len(index) == n
    one = timed(lambda i: index.search(queries[i % len(queries)][None, :], k), len(queries))
    return {"modules": n, "insert_s": round(insert_s, 2), "load_s": round(load_s, 2),
            "ms_per_search": 1000 * statistics.median(one), "searches_per_s": 1 / statistics.median(one),
            "peak_rss_mb": round(peak_mb(), 1)}


def bench_size(n: int, queries: np.ndarray, k: int, duckdb_queries: int) -> dict:
    dim = queries.shape[1]
    matrix = unit_rows(n, dim)
    one = timed(lambda i: top_k(matrix, queries[i % len(queries)][None, :], k), len(queries))
    started = time.perf_counter()
    top_k(matrix, queries, k)
    batch = (time.perf_counter() - started) / len(queries)
    con = duckdb.connect()
    table = pa.table({"module_id": [f"m{i}" for i in range(n)],
                      "v": pa.FixedSizeListArray.from_arrays(pa.array(matrix.ravel()), dim)})
    con.register("vectors", table)
    con.execute(f"CREATE TABLE modules AS SELECT module_id, v::FLOAT[{dim}] AS embedding FROM vectors")
    db = timed(lambda i: duckdb_top_k(con, "modules", "embedding", dim, queries[i % len(queries)], k), duckdb_queries)
    con.close()
    return {"modules": n, "numpy_ms_per_search": 1000 * statistics.median(one),
            "numpy_searches_per_s": 1 / statistics.median(one),
            "numpy_batched_ms_per_query": 1000 * batch,
            "duckdb_ms_per_search": 1000 * statistics.median(db), "duckdb_searches_per_s": 1 / statistics.median(db),
            "peak_rss_mb": round(peak_mb(), 1)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    p.add_argument("--queries", type=int, default=200, help="searches timed per size (numpy)")
    p.add_argument("--duckdb-queries", type=int, default=20, help="searches timed per size (DuckDB)")
    p.add_argument("--embed", type=int, default=1000, help="texts embedded for the embeddings/s figure")
    p.add_argument("--k", type=int, default=5)
    p.add_argument("--no-store", action="store_true", help="skip the measures through a real store")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    rate, vectors = embed_rate(args.embed)
    queries = vectors[: args.queries]
    report = {"embeddings_per_s": round(rate, 1), "dim": int(vectors.shape[1]), "k": args.k,
              "sizes": [bench_size(n, queries, args.k, args.duckdb_queries) for n in args.sizes],
              "store": [] if args.no_store else [bench_store(n, queries, args.k) for n in args.sizes],
              "peak_rss_mb": round(peak_mb(), 1)}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"embedder all-minilm-l6-v2 (dim {report['dim']}): {report['embeddings_per_s']:.0f} embeddings/s")
    for s in report["sizes"]:
        print(f"{s['modules']:>7} modules: numpy {s['numpy_ms_per_search']:.2f} ms/search "
              f"({s['numpy_searches_per_s']:.0f}/s; batched {s['numpy_batched_ms_per_query']:.3f} ms/query), "
              f"duckdb array_cosine_similarity {s['duckdb_ms_per_search']:.1f} ms/search "
              f"({s['duckdb_searches_per_s']:.0f}/s); peak RSS {s['peak_rss_mb']:.0f} MB")
    for s in report["store"]:
        print(f"{s['modules']:>7} modules in a store: insert {s['insert_s']:.1f} s, index load {s['load_s']:.2f} s, "
              f"then {s['ms_per_search']:.2f} ms/search ({s['searches_per_s']:.0f}/s); "
              f"peak RSS {s['peak_rss_mb']:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
