"""Teacher calls PERsD pays for against StanD's, on the same tasks.

Both recipes read the MBPP train split (a local sanitized-MBPP file, ``kind: mbpp``, ``split:
train``). PERsD: the embedded SmolLM2-135M student attempts each task; only failed attempts go to
the teacher. StanD: the teacher answers every task. The teacher is a scripted loopback
OpenAI-compatible server (in this process) that answers with the task's reference solution, so
the figures count calls, not teacher quality. Prints the funnel and the two call counts.

    python bench/persd_calls.py --mbpp ../shared/data/sanitized-mbpp.json [--limit N]

Set ``DISTILLC_TORCH_THREADS=1`` on a busy machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.loopback import LoopbackServer  # noqa: E402

DEFAULT_MBPP = ROOT.parent / "shared" / "data" / "sanitized-mbpp.json"
_TURN1_TASK = re.compile(r"TASK:\n(.*?)\n\nHEADER:", re.S)


def scripted_teacher(rows: list[dict[str, Any]]):
    """Answers PERsD refinements and StanD questions with the task's reference solution."""
    refs = {r["prompt"].strip(): r["code"] for r in rows}

    def answer(body: dict[str, Any]) -> str:
        first = next(m["content"] for m in body["messages"] if m["role"] == "user")
        found = _TURN1_TASK.search(first)
        text = found.group(1).strip() if found else first
        code = next((c for t, c in refs.items() if text.startswith(t)), "")
        return f"RECTIFIED CODE:\n```python\n{code.rstrip()}\n```"
    return answer


def quickstart_stages() -> list[dict[str, Any]]:
    return yaml.safe_load((ROOT / "recipes" / "quickstart.yaml").read_text(encoding="utf-8"))["stages"]


def recipes(mbpp: Path, url: str, limit: int | None) -> dict[str, dict[str, Any]]:
    source = {"kind": "mbpp", "path": str(mbpp), "split": "train", "name": "mbpp-train"}
    if limit:
        source["limit"] = limit
    teacher = {"backend": "openai", "model": "gpt-4o-mini", "base_url": url}
    student = {"backend": "transformers", "model": "smollm2-135m", "batch_size": 8}
    persd = quickstart_stages()      # the quickstart's PERsD stages, on MBPP and the scripted teacher
    stand = [{"uses": "teacher_answer"}, {"uses": "extract_code"}, {"uses": "execute"}, {"uses": "filter"},
             {"uses": "format", "with": {"prompt": "persd", "variant": "StanD"}}]
    return {
        "persd-calls": {"name": "persd-calls", "sources": [source], "teacher": teacher, "student": student,
                        "stages": persd},
        "stand-calls": {"name": "stand-calls", "sources": [source], "teacher": teacher, "stages": stand},
    }


def teacher_calls(store_path: str, corpus: str) -> dict[str, int]:
    """Teacher requests per stage of the corpus's latest version (cache hits included)."""
    from compiler.store.db import Store
    from compiler.store.versions import resolve

    with Store.open_readonly(store_path) as store:
        v = resolve(store, corpus)
        fps = [s["fingerprint"] for s in v.stages]
        rows = store.con.execute(
            "SELECT stage, count(*) FROM llm_calls WHERE role = 'teacher' AND list_contains(?, stage_fp) "
            "GROUP BY 1 ORDER BY 1", [fps]).fetchall()
    return {stage: int(n) for stage, n in rows}


def persd_funnel(store_path: str) -> dict[str, Any]:
    from compiler.methods.persd.funnel import persd_funnel as funnel
    from compiler.store.db import Store
    from compiler.store.versions import resolve

    with Store.open_readonly(store_path) as store:
        return funnel(store, resolve(store, "persd-calls")) or {}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mbpp", type=Path, default=DEFAULT_MBPP, help="a local sanitized-MBPP json file")
    p.add_argument("--limit", type=int, default=None, help="only the first N train tasks")
    p.add_argument("--store", default=None, help="keep the store here (default: a temporary one); a rerun "
                   "answers the student from its cache")
    args = p.parse_args(argv)
    os.environ.setdefault("OPENAI_API_KEY", "loopback")
    os.environ.setdefault("DISTILLC_PROGRESS", "0")
    from compiler.progress import quiet_third_party_bars
    from compiler.runner import compile_recipe

    quiet_third_party_bars()

    rows = json.loads(args.mbpp.read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory() as tmp, LoopbackServer(answer=scripted_teacher(rows)) as server:
        store = args.store or str(Path(tmp) / "store.duckdb")
        seconds = {}
        for name, recipe in recipes(args.mbpp, server.url, args.limit).items():
            path = Path(tmp) / f"{name}.yaml"
            path.write_text(yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")
            started = time.perf_counter()
            compile_recipe(path, store)
            seconds[name] = time.perf_counter() - started
        report(store, seconds)
    return 0


def report(store: str, seconds: dict[str, float]) -> None:
    funnel = persd_funnel(store)
    persd, stand = teacher_calls(store, "persd-calls"), teacher_calls(store, "stand-calls")
    n_persd, n_stand = sum(persd.values()), sum(stand.values())
    print(f"tasks (MBPP train): {funnel.get('tasks')}")
    print(f"student attempts: {funnel.get('attempts')} (passed {funnel.get('attempts_passed')}, "
          f"failed {funnel.get('attempts_failed')})")
    print(f"PERsD teacher calls: {n_persd}  {persd}")
    print(f"StanD teacher calls: {n_stand}  {stand}")
    print(f"PERsD / StanD teacher calls: {n_persd / n_stand:.3f}" if n_stand else "StanD made no calls")
    print(f"refinements requested={funnel.get('refinements_requested')} parsed={funnel.get('refinements_parsed')} "
          f"passed={funnel.get('refinements_passed')}; kept {funnel.get('kept')}")
    print("compile seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in seconds.items()))


if __name__ == "__main__":
    sys.exit(main())
