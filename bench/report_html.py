"""The HTML report at scale: compile N tasks (the StanD shape with a filter, against a zero-latency
loopback teacher in its own process, as in bench/compile_scale.py), then time the report's data
gathering (``report_data``) and rendering (``render_html``), the page's size, and its load in headless
chromium; each set against its target (5 MB, 3 s).

The teacher's answers vary in length with the task number (so examples cost different amounts) and
one task in 13 gets a wrong answer (dropped by the tests), so the funnel has drops and the cost
histogram has a spread.

    .venv/bin/python bench/report_html.py                      # 100000 tasks
    .venv/bin/python bench/report_html.py --tasks 10000 --keep /tmp/report-bench   # keep store and page
    .venv/bin/python bench/report_html.py --store /tmp/report-bench/store.duckdb   # reuse a compiled store
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.corpora import build_corpus  # noqa: E402

MAX_MB, MAX_RENDER_S = 5.0, 3.0


def answer(body: dict) -> str:
    """Task i's solution with i % 7 comment lines (a longer, dearer answer); wrong for i % 13 == 0."""
    text = body["messages"][-1]["content"]
    i = int(text.split(":", 1)[0].split()[1])
    k, off = i % 97 + 2, i // 97 + (1 if i % 13 == 0 else 0)
    notes = "".join(f"    # step {j}: scale x by {k}, then shift by {off}\n" for j in range(i % 7))
    return f"```python\ndef scale_{i}(x):\n{notes}    return {k} * x + {off}\n```"


def build_store(n: int, directory: Path) -> Path:
    return build_corpus(n, directory, "report-bench", "bench.report_html")


def time_report(store: Path, out: Path) -> dict:
    from compiler.commands.diff import compare
    from compiler.report_html import render_html, report_data
    from compiler.store.db import Store
    from compiler.store.versions import resolve

    with Store.open_readonly(str(store)) as st:
        version = resolve(st, "report-bench")
        t0 = time.perf_counter()
        data = report_data(st, version)
        t1 = time.perf_counter()
    page = render_html(data)
    t2 = time.perf_counter()
    out.write_text(page, encoding="utf-8")
    with Store.open_readonly(str(store)) as st:        # a first version has no diff: time one at this size
        t3 = time.perf_counter()
        compare(st, version, version)
        diff_s = time.perf_counter() - t3
    return {"rows": version.rows, "data_s": t1 - t0, "render_s": t2 - t1, "parts": data["timings"],
            "mb": out.stat().st_size / 1e6, "diff_s": diff_s}


def browser_load(page: Path) -> tuple[float, int, list[str]]:
    """Seconds to a complete document in headless chromium, charts drawn, console errors."""
    from tests.browser import chart_sizes, start_chromium

    browser = start_chromium()
    try:
        seconds = browser.open(page.as_uri())
        drawn = sum(1 for c in chart_sizes(browser) if c["width"] > 0 and c["shapes"] > 0)
        return seconds, drawn, browser.errors()
    finally:
        browser.driver.quit()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=100000, help="tasks to compile (default 100000)")
    ap.add_argument("--store", type=Path, default=None, help="report on this compiled store instead of compiling")
    ap.add_argument("--keep", type=Path, default=None, help="keep the store and the page in this directory")
    args = ap.parse_args()
    os.environ.setdefault("DISTILLC_PROGRESS", "0")
    work = args.keep or Path(tempfile.mkdtemp(prefix="report-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        store = args.store or build_store(args.tasks, work)
        r = time_report(store, work / "report.html")
        print(f"report_data: {r['data_s']:.2f} s for {r['rows']} kept rows ("
              + ", ".join(f"{k} {v:.2f} s" for k, v in r["parts"].items()) + ")")
        print(f"render_html: {r['render_s']:.2f} s (report_data + render_html: {r['data_s'] + r['render_s']:.2f} s)")
        print(f"diff:        {r['diff_s']:.2f} s for the version against itself (the report diffs against the "
              "previous version; this one is the first)")
        print(f"page size:   {r['mb']:.3f} MB (target {MAX_MB:g} MB: {r['mb'] / MAX_MB:.1%} of it)")
        seconds, drawn, errors = browser_load(work / "report.html")
        print(f"chromium:    {seconds:.2f} s to a complete document (target {MAX_RENDER_S:g} s: "
              f"{seconds / MAX_RENDER_S:.1%} of it); {drawn} charts drawn; {len(errors)} console errors")
        for e in errors:
            print(f"  console: {e}")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
