"""The ledger's group commit as the ledger grows: what one group of 512 answered calls costs to
commit (``compiler.llm.fold.write``: their ``llm_calls`` rows created pending, then finished, and
their ``llm_cache`` entries) when the store already holds N calls and N cached answers.

A flat column means committing answers costs the same at any corpus size; a growing one is time
a million-task compile spends per partition that a ten-thousand-task one does not. Printed per N:
milliseconds per group for the whole commit and for each of its three statements (the create, the
finish, the cache insert), each in its own transaction, as the median of ``--groups`` groups; and the
finish without the ``since`` bound a live recorder gives it (as a recovery's replay runs it).

    .venv/bin/python bench/ledger_growth.py [--sizes 10000,100000,1000000] [--groups 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from compiler.llm import fold  # noqa: E402
from compiler.llm.recorder import new_call_id  # noqa: E402
from compiler.store.db import Store  # noqa: E402

GROUP = 512
CTX = ["openai", "bench-teacher", "teacher", "teacher_answer", "f" * 20, "p1"]
ANSWER = '{"text": "' + "def f(x):\\n    return x + 1\\n" * 6 + '", "finish_reason": "stop"}'


def events(n: int, t: float) -> list[tuple[dict, dict]]:
    """``n`` calls as the recorder journals them: a ``sent`` event and its ``ok`` answer."""
    out = []
    for _ in range(n):
        call_id = new_call_id()
        key = call_id.rjust(64, "0")
        base = {"t": t, "id": call_id, "key": key, "ctx": CTX, "served": '["r"]', "att": 1}
        out.append(({**base, "ev": "sent", "size": [40, 120, 256, 0.0]},
                    {**base, "ev": "ok", "t": t + 0.01, "status": "ok", "usage": [40, 0, 68, 0], "usd": 0.0,
                     "lat": 0.01, "req": '{"messages": []}', "resp": ANSWER}))
    return out


def grow(store: Store, n: int, t: float) -> None:
    """Bring the ledger and the cache to ``n`` finished calls in bulk, through the same write path."""
    have = store.con.execute("SELECT count(*) FROM llm_calls").fetchall()[0][0]
    while have < n:
        rows = fold.Rows()
        for sent, ok in events(min(50_000, n - have), t):
            rows.add(sent)
            rows.add(ok)
        with store.transaction() as con:
            fold.write(con, rows)
        have = store.con.execute("SELECT count(*) FROM llm_calls").fetchall()[0][0]
    store.con.execute("CHECKPOINT")


def commit_once(store: Store, t: float) -> dict[str, float]:
    """One group committed as the live recorder does it (sent rows in one group, answers in the
    next: an answer never arrives in the group that sent its request when the teacher has latency),
    timed statement by statement."""
    pairs = events(GROUP, t)
    created, finished = fold.Rows(), fold.Rows()
    for sent, ok in pairs:
        created.add(sent)
        finished.add(ok)
    cache_only = fold.Rows(cache=finished.cache)
    final_only = fold.Rows(final=finished.final, since=t - 1.0)   # as a live recorder's groups
    out = {}
    for name, rows in (("create", created), ("finish", final_only), ("cache", cache_only)):
        t0 = time.perf_counter()
        with store.transaction() as con:
            fold.write(con, rows)
        out[name] = 1000 * (time.perf_counter() - t0)
    out["total"] = sum(out.values())
    # the same finish without the bound (a recovery's replay): every ledger row is joined
    again = fold.Rows(final=finished.final)
    t0 = time.perf_counter()
    with store.transaction() as con:
        fold.write(con, again)
    out["unbounded"] = 1000 * (time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated ledger sizes")
    ap.add_argument("--groups", type=int, default=5, help="groups timed at each size (the median is printed)")
    args = ap.parse_args()
    sizes = sorted(int(x) for x in args.sizes.split(","))
    print(f"ms to commit a group of {GROUP} answered calls (median of {args.groups}), by ledger size")
    print(f"{'calls':>10} {'total':>8} {'create':>8} {'finish':>8} {'cache':>8} {'vs first':>9} {'finish unbounded':>17}")
    first = None
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "ledger.duckdb")
        try:
            for n in sizes:
                grow(store, n, time.time() - 3600)       # calls of earlier partitions and runs
                runs = [commit_once(store, time.time()) for _ in range(args.groups)]
                med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
                first = first or med["total"]
                print(f"{n:>10} {med['total']:>8.1f} {med['create']:>8.1f} {med['finish']:>8.1f} "
                      f"{med['cache']:>8.1f} {med['total'] / first:>8.2f}x {med['unbounded']:>17.1f}", flush=True)
        finally:
            store.close()


if __name__ == "__main__":
    main()
