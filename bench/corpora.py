"""Corpora for the benchmarks: N synthetic tasks compiled against a zero-latency loopback teacher
that runs in a process of its own on 127.0.0.1, each compile a `distillc` process of its own.

``start_teacher(module)`` serves the ``answer(body) -> str`` function of a bench module;
``build_corpus`` writes the tasks (bench/compile_overhead.py's ``make_tasks``) and a recipe of the
StanD shape with a filter and prices (so every call costs something and failed tests are dropped),
and compiles it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PRICED_STAND = """\
name: {name}
sources:
  - kind: jsonl
    path: {tasks}
teacher:
  backend: openai
  model: loopback-teacher
  base_url: {url}
  max_concurrency: 64
  prices: {{input: 0.15, output: 0.6}}
stages:
  - uses: teacher_answer
  - uses: extract_code
  - uses: execute
  - uses: filter
  - uses: dedup
  - uses: format
"""


def start_teacher(module: str) -> tuple[subprocess.Popen, str]:
    """The loopback teacher answering with ``module.answer``, in its own process; (process, url).
    Close its stdin to stop it."""
    code = ("import sys; sys.path.insert(0, %r)\n"
            "from %s import answer\n"
            "from tests.loopback import LoopbackServer\n"
            "s = LoopbackServer(answer=answer).start()\n"
            "print(s.url, flush=True)\n"
            "sys.stdin.read()\n") % (str(ROOT), module)
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip()


def build_corpus(n: int, directory: Path, name: str, answer_module: str) -> Path:
    """Compile N tasks into ``directory/store.duckdb``, print what it took, return the store."""
    from bench.compile_overhead import make_tasks
    from bench.compile_scale import compile_once

    make_tasks(directory / "tasks.jsonl", n)
    server, url = start_teacher(answer_module)
    try:
        recipe = directory / f"{name}.yaml"
        recipe.write_text(PRICED_STAND.format(name=name, tasks=directory / "tasks.jsonl", url=url))
        store = directory / "store.duckdb"
        wall, out, peak = compile_once(recipe, store, "local")
        print(f"compile: {n} tasks -> {out['ref']}, {out['rows']} rows in {wall:.1f} s ({out['llm_calls']} calls, "
              f"${out['usd']:.4f}; peak {peak:.0f} MiB)", flush=True)
        return store
    finally:
        server.stdin.close()
        server.wait(10)
