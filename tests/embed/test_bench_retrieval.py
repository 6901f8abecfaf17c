"""``bench/retrieval.py`` runs and reports what it promises (a small size, so it stays quick): the
embedder's rate, both scans, and the path through a real store."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "retrieval.py"


def test_retrieval_bench_reports_every_measure():
    r = subprocess.run([sys.executable, str(BENCH), "--sizes", "500", "--queries", "5", "--duckdb-queries", "2",
                        "--embed", "8", "--json"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["dim"] == 384 and report["embeddings_per_s"] > 0 and report["k"] == 5
    (scan,), (store,) = report["sizes"], report["store"]
    assert scan["modules"] == store["modules"] == 500
    assert all(scan[key] > 0 for key in ("numpy_ms_per_search", "duckdb_ms_per_search", "peak_rss_mb"))
    assert store["load_s"] > 0 and store["insert_s"] > 0 and store["ms_per_search"] > 0
