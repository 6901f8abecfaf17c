"""PERsD's test construction (METHODS §1(b) P0), the parts that involve no stage machinery: reading
the teacher's proposed inputs, and turning the reference solution's sandbox runs into io tests.

The reference runs twice, the second time with the calls in reverse order; a call whose outputs
differ (randomness, time, state carried between calls) marks the whole reference as
non-deterministic. A call that raises is left out and the others run again without it.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

from evals.sandbox.types import ExecResult, Job, Limits, Status, TestCase, TestSpec

_BULLET = re.compile(r"^\s*(?:[-*+•]|\d+[.)]|>>>)\s*")
_OBJECT_REPR = re.compile(r"<.*\bat 0x[0-9a-fA-F]+>", re.S)


def parse_calls(text: str, entry_point: str, limit: int) -> list[str]:
    """Calls of ``entry_point`` in the teacher's reply, one per line, in order, without repeats.

    PERsD's rule: a line that does not start with the function name but contains it is sliced
    from the name on. Bullets, numbering and backticks are removed first, and a line must parse
    as a single call of the entry point."""
    calls: list[str] = []
    for line in text.splitlines():
        candidate = _BULLET.sub("", line.strip().strip("`")).strip().rstrip(";,")
        at = candidate.find(entry_point + "(")
        if at < 0:
            continue
        call = _whole_call(candidate[at:], entry_point)
        if call is not None and call not in calls:
            calls.append(call)
        if len(calls) == limit:
            break
    return calls


def _whole_call(text: str, entry_point: str) -> str | None:
    try:
        node = ast.parse(text, mode="eval").body
    except (SyntaxError, ValueError):
        return None
    ok = isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == entry_point
    return text if ok else None


def is_object_repr(output: str | None) -> bool:
    """PERsD nulls outputs that print as object reprs (``<function f at 0x...>``)."""
    return output is None or bool(_OBJECT_REPR.search(output))


def oracle_jobs(reference: str, entry_point: str, calls: list[str], limits: Limits) -> tuple[Job, Job]:
    """The two runs of the reference: the calls in order, and in reverse order."""
    def job(order: list[str]) -> Job:
        cases = tuple(TestCase(kind="io", call=c) for c in order)
        return Job(code=reference, tests=TestSpec(style="io", entry_point=entry_point, cases=cases),
                   limits=limits)
    return job(calls), job(list(reversed(calls)))


@dataclass
class OracleState:
    """One task's oracle runs so far: the calls still to run, the outputs of finished calls, and
    why the task is out (``nondeterministic_reference``, ``reference_failed``), if it is."""

    calls: list[str]
    outputs: dict[str, str] = field(default_factory=dict)
    dropped_calls: list[str] = field(default_factory=list)
    failure: str | None = None
    detail: str | None = None

    @property
    def settled(self) -> bool:
        return self.failure is not None or not self.calls

    def absorb(self, forward: ExecResult, backward: ExecResult) -> None:
        """Take the outputs of one pair of runs; calls that raised are dropped for the next pair."""
        if _infrastructure(forward) or _infrastructure(backward):
            self.failure, self.detail = "reference_failed", f"{forward.status.value}: {forward.feedback}"
            return
        first = dict(zip(self.calls, forward.outputs or []))
        second = dict(zip(reversed(self.calls), backward.outputs or []))
        for call in self.calls:
            both = call in first and call in second
            if both and not is_object_repr(first[call]) and first[call] != second[call]:
                self.failure = "nondeterministic_reference"
                self.detail = f"{call}: {first[call]!r} then {second[call]!r}"
                return
        raised = _raised(self.calls, forward, backward)
        if not raised:
            self.outputs.update(first)
            self.calls = []
            return
        self.dropped_calls += raised
        self.calls = [c for c in self.calls if c not in raised]

    def tests(self, order: list[str]) -> list[tuple[str, str]]:
        """(call, expected text) pairs in the proposed order, object reprs left out."""
        return [(c, self.outputs[c]) for c in order if c in self.outputs and not is_object_repr(self.outputs[c])]


def _raised(calls: list[str], forward: ExecResult, backward: ExecResult) -> list[str]:
    """The calls each run stopped at (the first call without an output)."""
    out = []
    if not forward.passed and len(forward.outputs or []) < len(calls):
        out.append(calls[len(forward.outputs or [])])
    back = list(reversed(calls))
    if not backward.passed and len(backward.outputs or []) < len(calls):
        out.append(back[len(backward.outputs or [])])
    return list(dict.fromkeys(out))


def _infrastructure(result: ExecResult) -> bool:
    """A run that says nothing about single calls: the reference does not compile, or the
    sandbox itself failed."""
    return result.status is Status.SYNTAX_ERROR or (result.first_failure or {}).get("error_type") == "SandboxError"
