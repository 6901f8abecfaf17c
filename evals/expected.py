"""Expected outputs of EvalPlus-style input cases, computed by running the reference solution.

The EvalPlus releases (MBPP+ v0.2.0) carry inputs but no outputs, so, as EvalPlus itself does,
the outputs come from the canonical solution. It runs in the sandbox (the inputs include large and
slow cases) as an *oracle run*: input cases with ``expected=None`` are not compared, and
``ExecResult.outputs`` returns each case's value in the sandbox's own encoding, so the comparison at
evaluation time is like for like. A run stops at the first input the reference rejects (it raises
or runs out of time): that input is dropped, as EvalPlus drops inputs that break a problem's
contract, and the rest are run again; the number dropped is kept in ``meta``. Jobs are
deterministic, so a sandbox execution cache makes recomputation free.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence

from evals.problems import Problem
from evals.sandbox.types import ExecResult, Job, Limits, Status, TestCase

# The reference runs every remaining input of a problem in one job.
EXPECTED_LIMITS = Limits(cpu_seconds=60.0, memory_mb=4096, max_output_bytes=1024 * 1024)
MAX_ROUNDS = 30   # a problem whose reference rejects more inputs than this keeps the ones it ran


def _fatal(result: ExecResult, entry_point: str) -> bool:
    """A failure that is not about one input: the reference or the sandbox is broken."""
    failure = result.first_failure or {}
    missing = f"name '{entry_point}' is not defined" in str(failure.get("message", "")) and not result.outputs
    return result.status is Status.SYNTAX_ERROR or failure.get("error_type") == "SandboxError" or missing


def needs_expected(problem: Problem) -> bool:
    return any(c.kind == "input" and c.expected is None for c in problem.tests.cases)


@dataclass
class _Progress:
    """One problem's oracle run: cases still to run, values found so far, cases dropped."""

    problem: Problem
    todo: list[TestCase]
    done: list[TestCase] = field(default_factory=list)
    dropped: int = 0

    def job(self, limits: Limits) -> Job:
        tests = replace(self.problem.tests, cases=tuple(self.todo))
        return Job(code=self.problem.reference, tests=tests, limits=limits)

    def absorb(self, result: ExecResult) -> None:
        """Keep the values of the cases that ran; drop the case that stopped the run."""
        if _fatal(result, self.problem.entry_point):
            raise RuntimeError(f"{self.problem.task_id}: the reference cannot run ({result.feedback[:200]})")
        values = result.outputs or []
        if len(values) != result.n_passed:
            raise RuntimeError(f"{self.problem.task_id}: the sandbox returned {len(values)} outputs for "
                               f"{result.n_passed} cases that ran; expected values would be misaligned")
        self.done += [replace(c, expected=json.dumps(v)) for c, v in zip(self.todo, values)]
        rest = self.todo[len(values):]
        if result.passed or not rest:
            self.todo = []
            return
        self.todo, self.dropped = rest[1:], self.dropped + 1

    def finished(self) -> Problem:
        """The problem with the values found; cases still to run after the last round count as
        dropped, and the first case is ``seen`` if the seen one was dropped."""
        cases = self.done
        if cases and not any(c.visibility == "seen" for c in cases):
            cases[0] = replace(cases[0], visibility="seen")
        meta = {**self.problem.meta, "dropped_inputs": self.dropped + len(self.todo)}
        return replace(self.problem, tests=replace(self.problem.tests, cases=tuple(cases)), meta=meta)


def fill_expected(problems: Sequence[Problem], *, run_many: Callable[..., list[ExecResult]] | None = None,
                  limits: Limits = EXPECTED_LIMITS, **run_kwargs: Any) -> list[Problem]:
    """``problems`` with every input case's ``expected`` computed from the reference in the
    sandbox (``evals.sandbox.run_many`` unless another runner is given; ``run_kwargs`` such as
    ``cache``, ``workers`` or ``progress`` are passed on). Problems that need nothing are returned
    as they are."""
    if run_many is None:
        from evals.sandbox import run_many
    work = {i: _Progress(p, [replace(c, expected=None) for c in p.tests.cases])
            for i, p in enumerate(problems) if needs_expected(p)}
    for _ in range(MAX_ROUNDS):
        active = [i for i, w in work.items() if w.todo]
        if not active:
            break
        results = run_many([work[i].job(limits) for i in active], **run_kwargs)
        for i, result in zip(active, results):
            work[i].absorb(result)
    return [work[i].finished() if i in work else p for i, p in enumerate(problems)]


__all__ = ["EXPECTED_LIMITS", "MAX_ROUNDS", "fill_expected", "needs_expected"]
