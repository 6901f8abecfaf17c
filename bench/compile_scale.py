"""Compile at scale: the StanD recipe shape (teacher_answer, extract_code, execute, dedup, format) on N
tasks against a zero-latency loopback teacher on 127.0.0.1 (its own process), for each N given.

Prints per N: the cold compile's wall time and overhead per task, the compile process's peak RSS, the
store's size on disk (of which the stage tables, and the ledger with the answer and execution caches)
next to the exported corpus (zstd Parquet) and to "added": a fresh DuckDB file holding only the
columns the stages add, the final corpus among them (ratio: store / added; stages/added: the stage
tables alone), and the unchanged rerun's wall time and calls; then the version's fingerprint and the
ledger's totals; with two executors, whether their fingerprints, rows and ledgers are the same.
Each compile runs as its own `distillc` process, as a user would run it.

    .venv/bin/python bench/compile_scale.py --tasks 10000,100000
    .venv/bin/python bench/compile_scale.py --tasks 10000 --executor ray
    .venv/bin/python bench/compile_scale.py --tasks 10000 --executor local,ray   # and compare them
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.compile_overhead import make_tasks  # noqa: E402  (same tasks; the teacher answers with its answer())

RECIPE = """\
name: scale
sources:
  - kind: jsonl
    path: {tasks}
teacher:
  backend: openai
  model: loopback-teacher
  base_url: {url}
  max_concurrency: 64
stages:
  - uses: teacher_answer
  - uses: extract_code
  - uses: execute
  - uses: dedup
  - uses: format
"""


def start_server() -> tuple[subprocess.Popen, str]:
    """The loopback teacher in a process of its own (answers computed from the task number)."""
    from bench.corpora import start_teacher

    return start_teacher("bench.compile_overhead")


def compile_once(recipe: Path, store: Path, executor: str) -> tuple[float, dict, float]:
    env = {**os.environ, "OPENAI_API_KEY": "bench", "DISTILLC_PROGRESS": "0"}
    cmd = ["/usr/bin/time", "-f", "%M", str(ROOT / ".venv/bin/distillc"), "compile", str(recipe),
           "--store", str(store), "--json"] + (["--executor", executor] if executor != "local" else [])
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"compile failed: {p.stderr.strip()[-2000:]}")
    peak_kib = float(p.stderr.strip().splitlines()[-1])
    return wall, json.loads(p.stdout), peak_kib / 1024


def export_size(store: Path, out: Path) -> float:
    env = {**os.environ, "DISTILLC_PROGRESS": "0"}
    subprocess.run([str(ROOT / ".venv/bin/distillc"), "export", "scale", str(out), "--store", str(store),
                    "--format", "parquet"], check=True, capture_output=True, env=env)
    return sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 2**20


def disk_mib(store: Path) -> float:
    return sum(p.stat().st_size for p in store.parent.glob(store.name + "*") if p.is_file()) / 2**20


LEDGER_AND_CACHES = ("llm_cache", "llm_calls", "exec_cache", "rejections", "llm_failures")


def breakdown(store: Path, out: Path) -> dict[str, float]:
    """Where the store's bytes are: DuckDB blocks held by the stage tables (``sd_*``) and by the
    ledger and caches; and the yardstick of the goal: a fresh DuckDB file holding only the columns
    the stages add (each stage table without its ids, order and lineage keys; the last one is the
    final corpus), i.e. what the corpus and its intermediate columns need at the least."""
    import duckdb

    con = duckdb.connect(str(store), read_only=True)
    try:
        block = con.execute("PRAGMA database_size").fetchall()[0][2]

        def mib(tables: list[str]) -> float:
            blocks = sum(con.execute("SELECT count(DISTINCT block_id) FROM pragma_storage_info(?) WHERE persistent",
                                     [t]).fetchall()[0][0] for t in tables)
            return blocks * block / 2**20

        tables = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
        stage_tables = [t for t in tables if t.startswith("sd_")]
        columns = {t: [r[0] for r in con.execute(f"DESCRIBE {t}").fetchall()
                       if r[0] not in ("row_id", "parent_ids", "_pos", "_base")] for t in stage_tables}
        stage_s = con.execute("SELECT stage, seconds FROM stage_outputs ORDER BY created_at").fetchall()
        # per stage: mean seconds of a partition in the first and in the last quarter (flat when linear)
        drift = con.execute(
            "SELECT o.stage, avg(p.seconds) FILTER (WHERE p.part < n.parts / 4), "
            "avg(p.seconds) FILTER (WHERE p.part >= n.parts - n.parts / 4), n.parts FROM stage_partitions p "
            "JOIN stage_outputs o USING (fingerprint) JOIN (SELECT fingerprint, count(*) AS parts "
            "FROM stage_partitions GROUP BY 1) n USING (fingerprint) WHERE n.parts >= 4 "
            "GROUP BY o.stage, n.parts, o.created_at ORDER BY o.created_at").fetchall()
        sizes = {"stage_s": stage_s, "drift": drift, "stage_mib": mib(stage_tables), "ledger_mib": mib([t for t in LEDGER_AND_CACHES if t in tables]),
                 "ledger": con.execute("SELECT count(*), sum(prompt_tokens + completion_tokens), sum(usd) "
                                       "FROM llm_calls WHERE status = 'ok'").fetchall()[0]}
    finally:
        con.close()
    minimal = out / "minimal.duckdb"
    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(minimal))
    try:
        con.execute("SET enable_progress_bar = false")
        con.execute(f"ATTACH '{store}' AS s (READ_ONLY)")
        for t, cols in columns.items():
            if cols:
                con.execute(f"CREATE TABLE {t} AS SELECT {', '.join(chr(34) + c + chr(34) for c in cols)} FROM s.{t}")
        con.execute("DETACH s")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return {**sizes, "minimal_mib": disk_mib(minimal)}


def rows_digest(export: Path) -> str:
    """An order-independent digest of the exported corpus's rows (same rows, same digest)."""
    import duckdb

    files = sorted(str(p) for p in export.rglob("*.parquet"))
    con = duckdb.connect()
    try:
        return con.execute("SELECT md5(coalesce(string_agg(h, '' ORDER BY h), '')) FROM (SELECT md5(CAST(t AS VARCHAR)) "
                           "AS h FROM read_parquet(?) t)", [files]).fetchall()[0][0][:20]
    finally:
        con.close()


def workdir(stack: contextlib.ExitStack, n: int, keep: Path | None) -> Path:
    if keep is None:
        return Path(stack.enter_context(tempfile.TemporaryDirectory()))
    tmp = keep / str(n)  # kept after the run (and after a failure, to look at the store or resume it)
    if any(tmp.glob("*/store.duckdb")):
        sys.exit(f"{tmp} holds a store from an earlier run: remove it (or pass another --keep)")
    tmp.mkdir(parents=True, exist_ok=True)
    return tmp


def measure(tmp: Path, recipe: Path, n: int, executor: str) -> dict:
    """Cold compile, unchanged rerun, export and store breakdown of one executor, in ``tmp/executor``."""
    here = tmp / executor
    here.mkdir()
    store = here / "store.duckdb"
    cold, first, peak = compile_once(recipe, store, executor)
    rerun, again, _ = compile_once(recipe, store, executor)
    export_mib = export_size(store, here / "export")
    return {"executor": executor, "tasks": n, "rows": first["rows"], "calls": first["llm_calls"], "cold_s": cold,
            "ms_per_task": 1000 * cold / n, "peak_mib": peak, "store_mib": disk_mib(store),
            "export_mib": export_mib, "digest": rows_digest(here / "export"), **breakdown(store, here / "added"),
            "rerun_s": rerun, "rerun_calls": again["llm_calls"], "fingerprint": first["fingerprint"]}


def report(r: dict) -> None:
    print(f"{r['executor']:>8} {r['tasks']:>9} {r['rows']:>9} {r['cold_s']:>9.1f} {r['ms_per_task']:>8.3f} "
          f"{r['peak_mib']:>9.0f} {r['store_mib']:>10.1f} {r['stage_mib']:>11.1f} {r['ledger_mib']:>14.1f} "
          f"{r['export_mib']:>11.1f} {r['minimal_mib']:>10.1f} {r['store_mib'] / r['minimal_mib']:>6.2f} "
          f"{r['stage_mib'] / r['minimal_mib']:>13.2f} {r['rerun_s']:>8.2f} {r['rerun_calls']:>12}", flush=True)
    calls, tokens, usd = r["ledger"]
    pad = " " * 18
    print(f"{pad} fingerprint {r['fingerprint']}; rows digest {r['digest']}; ledger: {calls} calls, {tokens} tokens, "
          f"${usd or 0:.4f}", flush=True)
    print(f"{pad} seconds by stage: " + ", ".join(f"{name} {s:.1f}" for name, s in r["stage_s"]), flush=True)
    if r["drift"]:
        print(f"{pad} s per partition, first -> last quarter: " + ", ".join(
            f"{name} {a:.2f} -> {b:.2f} ({parts} parts)" for name, a, b, parts in r["drift"]), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", default="10000", help="comma-separated task counts")
    ap.add_argument("--executor", default="local",
                    help="local, ray, or both (local,ray): each compiles the same recipe file against the same "
                         "teacher, and their corpora and ledgers are compared")
    ap.add_argument("--keep", type=Path, metavar="DIR",
                    help="work in DIR/N and keep the tasks, stores and exports there (also when a compile fails)")
    args = ap.parse_args()
    executors = args.executor.split(",")
    if not executors or any(e not in ("local", "ray") for e in executors) or len(set(executors)) < len(executors):
        ap.error(f"--executor: expected local, ray or local,ray, got {args.executor!r}")
    server, url = start_server()
    try:
        print(f"executor {args.executor}; load average {os.getloadavg()[0]:.1f} at the start")
        print(f"{'executor':>8} {'tasks':>9} {'rows':>9} {'cold s':>9} {'ms/task':>8} {'peak MiB':>9} {'store MiB':>10} "
              f"{'stages MiB':>11} {'ledger+caches':>14} {'export MiB':>11} {'added MiB':>10} {'ratio':>6} "
              f"{'stages/added':>13} {'rerun s':>8} {'rerun calls':>12}")
        for n in (int(x) for x in args.tasks.split(",")):
            with contextlib.ExitStack() as stack:
                tmp = workdir(stack, n, args.keep)
                if not (tmp / "tasks.jsonl").exists():
                    make_tasks(tmp / "tasks.jsonl", n)
                recipe = tmp / "scale.yaml"
                recipe.write_text(RECIPE.format(tasks=tmp / "tasks.jsonl", url=url))
                results = []
                for executor in executors:
                    results.append(measure(tmp, recipe, n, executor))
                    report(results[-1])
                if len(results) > 1:
                    a, b = results
                    same = {"fingerprint": a["fingerprint"] == b["fingerprint"], "rows": a["digest"] == b["digest"],
                            "ledger": a["ledger"] == b["ledger"]}
                    print(f"{'':>18} {a['executor']} vs {b['executor']}: " + ", ".join(
                        f"{k} {'same' if v else 'DIFFERENT'}" for k, v in same.items()), flush=True)
    finally:
        server.stdin.close()
        server.wait(10)


if __name__ == "__main__":
    main()
