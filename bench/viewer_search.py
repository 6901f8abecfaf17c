"""Viewer search at scale: row searches of one version through the viewer's HTTP app (uvicorn on
127.0.0.1, the store opened read-only per request), against the 200 ms target.

Without ``--store`` it first compiles N tasks (the StanD shape of bench/compile_overhead.py:
teacher_answer, extract_code, execute, filter, dedup, format) against a zero-latency loopback
teacher in its own process, priced so every call costs something; the teacher answers every 7th
task with a wrong function, so the filter drops rows and the rejection filters have something to
find. With ``--store`` it searches the latest version of that store's first corpus (or ``--ref``).

Prints the first cost-filtered page apart (it waits for the version's per-example costs, computed
once per server process), then for each query the median and max milliseconds over ``--repeat`` requests of the
HTML rows page and their ratio to 200 ms.

    .venv/bin/python bench/viewer_search.py                      # 100000 tasks: compiles first (minutes)
    .venv/bin/python bench/viewer_search.py --tasks 10000
    .venv/bin/python bench/viewer_search.py --store data/distillc.duckdb --ref quickstart
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.corpora import build_corpus  # noqa: E402

TARGET_MS = 200.0


def answer(body: dict) -> str:
    """The task's solution, computed from its number; a wrong one for every 7th task."""
    text = body["messages"][-1]["content"]
    i = int(text.split(":", 1)[0].split()[1])
    k, off = i % 97 + 2, i // 97
    return f"```python\ndef scale_{i}(x):\n    return {k} * x + {off + (1 if i % 7 == 3 else 0)}\n```"


def build_store(n: int, directory: Path) -> Path:
    return build_corpus(n, directory, "viewer-bench", "bench.viewer_search")


def pick_version(store: Path, ref: str | None) -> tuple[str, int]:
    """The version searched."""
    from compiler.store.db import Store
    from compiler.store.versions import list_versions, resolve

    with Store.open_readonly(str(store)) as st:
        version = resolve(st, ref) if ref else list_versions(st, list_versions(st)[0].corpus)[-1]
    return version.corpus, version.version


def cost_quartiles(app) -> list[float]:
    """The quartiles of the row costs the app computed for the version (for the cost-range query)."""
    import pyarrow.compute as pc

    (job,) = app.state.viewer.cost_jobs.values()
    costs = job.result
    return [float(x) for x in pc.quantile(costs["usd"], q=[0.25, 0.75]).to_pylist()] if costs.num_rows else [0.0, 1.0]


def queries(facets: dict, pages: int, quartiles: list[float]) -> list[tuple[str, dict]]:
    reason = facets["dropped"][0]["reason"] if facets["dropped"] else "none"
    variant = facets["variants"][0] if facets["variants"] else "none"
    return [
        ("page 1, no filter", {}),
        ('text "return 5 times"', {"q": "return 5 times"}),
        ('text "Task 4242:"', {"q": "Task 4242:"}),
        (f"variant {variant}", {"variant": variant}),
        (f"reason {reason}", {"reason": reason}),
        (f"cost ${quartiles[0]:.7f}..${quartiles[1]:.7f}",
         {"min_usd": f"{quartiles[0]:.9f}", "max_usd": f"{quartiles[1]:.9f}"}),
        ("text + variant + cost", {"q": "plus 1", "variant": variant, "min_usd": f"{quartiles[0]:.9f}"}),
        (f"deep page {pages // 2}", {"page": str(max(pages // 2, 1))}),
        (f"last page {pages}", {"page": str(max(pages, 1))}),
    ]


def timed(client, url: str, params: dict) -> tuple[float, object]:
    t0 = time.perf_counter()
    r = client.get(url, params=params)
    ms = 1000 * (time.perf_counter() - t0)
    if r.status_code != 200:
        sys.exit(f"{url} {params}: HTTP {r.status_code}: {r.text[:300]}")
    return ms, r


def measure(store: Path, ref: str | None, repeat: int) -> None:
    import httpx

    from compiler.viewer.app import create_app
    from tests.viewer_server import serving

    corpus, number = pick_version(store, ref)
    app = create_app(str(store))
    with serving(app) as base, httpx.Client(base_url=base, timeout=600) as client:
        page = f"/corpus/{corpus}/{number}"
        cold, _ = timed(client, page, {"min_usd": "0"})    # waits for the version's costs
        quartiles = cost_quartiles(app)
        _, api = timed(client, f"/api{page}/rows", {})
        data = api.json()
        print(f"{corpus}@{number}: {data['total']} rows (kept and dropped), {data['pages']} pages; "
              f"load average {os.getloadavg()[0]:.1f}")
        print(f"first cost-filtered page (waits for the version's per-example costs, computed once): {cold:.0f} ms")
        print(f"{'query':<44} {'matches':>8} {'median ms':>10} {'max ms':>8} {'median/200ms':>13}")
        for label, params in queries(data["facets"], data["pages"], quartiles):
            times = []
            for _ in range(repeat):
                ms, _ = timed(client, page, params)
                times.append(ms)
            matches = client.get(f"/api{page}/rows", params=params).json()["total"]
            med = statistics.median(times)
            print(f"{label:<44} {matches:>8} {med:>10.1f} {max(times):>8.1f} {med / TARGET_MS:>13.2f}", flush=True)
        row_id = data["rows"][0]["row_id"]
        times = [timed(client, f"{page}/row/{row_id}", {})[0] for _ in range(repeat)]
        print(f"{'one example page (lineage and calls)':<44} {'':>8} {statistics.median(times):>10.1f} "
              f"{max(times):>8.1f} {statistics.median(times) / TARGET_MS:>13.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=100_000, help="tasks to compile when no --store is given")
    ap.add_argument("--store", type=Path, help="search this store instead of compiling one")
    ap.add_argument("--ref", help="CORPUS[@VERSION] to search (default: the first corpus's latest version)")
    ap.add_argument("--repeat", type=int, default=7, help="requests per query")
    ap.add_argument("--keep", type=Path, help="compile into this directory and keep the store")
    args = ap.parse_args()
    if args.store:
        measure(args.store, args.ref, args.repeat)
        return
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        measure(build_store(args.tasks, args.keep), args.ref, args.repeat)
        return
    with tempfile.TemporaryDirectory() as tmp:
        measure(build_store(args.tasks, Path(tmp)), args.ref, args.repeat)


if __name__ == "__main__":
    main()
