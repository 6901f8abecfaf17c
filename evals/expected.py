"""Expected outputs of EvalPlus-style input cases, computed by running the reference solution.

The EvalPlus releases (MBPP+ v0.2.0) carry inputs but no outputs, so the outputs are computed
from the canonical solution, as EvalPlus itself does, inside the sandbox (the inputs include large
and slow cases, and the reference is still code that runs with limits). One sandbox job per
problem runs the reference on every input and prints one JSON line per case, with the value
encoded exactly as the sandbox encodes a candidate's return value, so the comparison at
evaluation time is like for like. Inputs the reference itself rejects (it raises) are dropped, as
EvalPlus drops inputs that break a problem's contract; their count is kept in ``meta``.
Jobs are deterministic, so a sandbox execution cache makes recomputation free.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, Callable, Sequence

from evals.problems import Problem
from evals.sandbox.types import Job, Limits, TestSpec

_DRIVER = '''

def _expected_outputs():
    import copy, json
    from evals.sandbox.inside.encode import decode, encode
    for index, raw in enumerate(json.loads({cases!r})):
        try:
            line = {{"i": index, "v": encode({entry}(*copy.deepcopy(decode(json.loads(raw)))))}}
        except BaseException as exc:
            line = {{"i": index, "error": type(exc).__name__}}
        print(json.dumps(line), flush=True)


_expected_outputs()
'''

# Generous limits: the reference runs every input of the problem in one job.
EXPECTED_LIMITS = Limits(cpu_seconds=120.0, memory_mb=4096, max_output_bytes=256 * 1024 * 1024)


def needs_expected(problem: Problem) -> bool:
    return any(c.kind == "input" and c.expected is None for c in problem.tests.cases)


def expected_job(problem: Problem, limits: Limits = EXPECTED_LIMITS) -> Job:
    """A ``run`` job printing the encoded output of the reference on each input case."""
    inputs = [c.inputs for c in problem.tests.cases]
    code = problem.reference + _DRIVER.format(cases=json.dumps(inputs), entry=problem.entry_point)
    return Job(code=code, tests=TestSpec(style="run"), limits=limits)


def parse_outputs(stdout: str, n_cases: int) -> list[str | None]:
    """The JSON-encoded expected value of each case (None where the reference raised)."""
    found: list[str | None] = [None] * n_cases
    for line in stdout.splitlines():
        if not line.startswith('{"i"'):
            continue
        item = json.loads(line)
        if "v" in item and 0 <= item["i"] < n_cases:
            found[item["i"]] = json.dumps(item["v"])
    return found


def with_outputs(problem: Problem, outputs: list[str | None]) -> Problem:
    """The problem with expected values filled and the inputs the reference rejected removed
    (the first remaining case becomes the ``seen`` one if the seen case was removed)."""
    cases = [replace(c, expected=o) for c, o in zip(problem.tests.cases, outputs) if o is not None]
    if cases and not any(c.visibility == "seen" for c in cases):
        cases[0] = replace(cases[0], visibility="seen")
    meta = {**problem.meta, "dropped_inputs": len(problem.tests.cases) - len(cases)}
    return replace(problem, tests=replace(problem.tests, cases=tuple(cases)), meta=meta)


def fill_expected(problems: Sequence[Problem], *, run_many: Callable[..., list[Any]] | None = None,
                  **run_kwargs: Any) -> list[Problem]:
    """``problems`` with every input case's ``expected`` computed from the reference, in the
    sandbox (``evals.sandbox.run_many`` unless another runner is given; ``run_kwargs`` such as
    ``cache`` or ``workers`` are passed on). A problem whose reference job did not run to the end
    raises ``RuntimeError``: its expected values would be incomplete."""
    if run_many is None:
        from evals.sandbox import run_many  # type: ignore[attr-defined, no-redef]
    todo = [i for i, p in enumerate(problems) if needs_expected(p)]
    results = run_many([expected_job(problems[i]) for i in todo], **run_kwargs) if todo else []
    out = list(problems)
    for i, result in zip(todo, results):
        if not result.passed:
            raise RuntimeError(f"{problems[i].task_id}: the reference did not run to the end "
                               f"({result.status.value}: {result.feedback[:200] or result.stderr[-200:]})")
        out[i] = with_outputs(problems[i], parse_outputs(result.stdout, len(problems[i].tests.cases)))
    return out


__all__ = ["EXPECTED_LIMITS", "expected_job", "fill_expected", "needs_expected",
           "parse_outputs", "with_outputs"]
