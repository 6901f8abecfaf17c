"""Compile overhead: N tasks against a zero-latency loopback teacher.

Prints the cold compile's wall time, the per-row overhead, the compile process's peak memory, and the
wall time of the unchanged rerun (goal: under 5 s with 0 LLM calls). Each compile runs as its own
`distillc` process, as a user would run it.

    .venv/bin/python bench/compile_overhead.py --tasks 10000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.loopback import LoopbackServer  # noqa: E402

RECIPE = """\
name: overhead
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
  - uses: filter
  - uses: dedup
  - uses: format
"""


def make_tasks(path: Path, n: int) -> None:
    """N distinct tasks: return k * x + offset, with io tests; the loopback teacher solves them."""
    with path.open("w") as f:
        for i in range(n):
            k, off = i % 97 + 2, i // 97
            name = f"scale_{i}"
            ref = f"def {name}(x):\n    return {k} * x + {off}\n"
            cases = [{"kind": "io", "call": f"{name}({x})", "expected": str(k * x + off),
                      "visibility": "seen" if j == 0 else "hidden"} for j, x in enumerate((0, 1, 5))]
            f.write(json.dumps({"task_id": f"t{i}", "instruction": f"Task {i}: return {k} times x plus {off}.",
                                "entry_point": name, "reference_solution": ref,
                                "tests": {"style": "io", "entry_point": name, "cases": cases}}) + "\n")


def answer(body: dict) -> str:
    text = body["messages"][-1]["content"]
    i = int(text.split(":", 1)[0].split()[1])
    k, off = i % 97 + 2, i // 97
    return f"```python\ndef scale_{i}(x):\n    return {k} * x + {off}\n```"


def run_compile(recipe: Path, store: Path) -> tuple[float, dict, int]:
    env = {**os.environ, "OPENAI_API_KEY": "bench", "DISTILLC_PROGRESS": "0"}
    t0 = time.perf_counter()
    p = subprocess.run([str(ROOT / ".venv/bin/distillc"), "compile", str(recipe), "--store", str(store), "--json"],
                       capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"compile failed: {p.stderr.strip()}")
    return wall, json.loads(p.stdout), resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=10000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, LoopbackServer(answer=answer) as server:
        tmp = Path(tmp)
        make_tasks(tmp / "tasks.jsonl", args.tasks)
        recipe = tmp / "overhead.yaml"
        recipe.write_text(RECIPE.format(tasks=tmp / "tasks.jsonl", url=server.url))
        cold, first, peak_kb = run_compile(recipe, tmp / "store.duckdb")
        rerun, again, _ = run_compile(recipe, tmp / "store.duckdb")
        size_mb = (tmp / "store.duckdb").stat().st_size / 2**20
    print(f"tasks                      {args.tasks}")
    print(f"rows kept                  {first['rows']}")
    print(f"cold compile               {cold:8.2f} s   ({first['llm_calls']} LLM calls)")
    print(f"per-row overhead           {1000 * cold / args.tasks:8.3f} ms/task (everything: LLM client, sandbox, store)")
    print(f"peak memory (compile)      {peak_kb / 1024:8.1f} MiB")
    print(f"store size                 {size_mb:8.1f} MiB")
    print(f"unchanged rerun            {rerun:8.2f} s   ({again['llm_calls']} LLM calls, "
          f"{again['stages_run']} stages run)   goal < 5 s with 0 calls: "
          f"{'met' if rerun < 5 and again['llm_calls'] == 0 else 'NOT met'}")


if __name__ == "__main__":
    main()
