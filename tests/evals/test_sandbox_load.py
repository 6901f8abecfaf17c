"""Pass/fail does not depend on how busy the machine is: limits are CPU time, not wall clock."""

from __future__ import annotations

import subprocess
import sys

import pytest

from evals.sandbox import Job, Limits, TestSpec, run_many
from tests.evals.sandbox_data import broken, humaneval, humaneval_job

BUSY = "while True:\n    pass\n"


def _sample() -> list[Job]:
    problems = humaneval()[:30]
    jobs = [humaneval_job(p) for p in problems]
    jobs += [humaneval_job(p, broken(p["canonical_solution"], p["entry_point"])) for p in problems[:10]]
    spin = "import time\nend = time.process_time() + {s}\nwhile time.process_time() < end:\n    pass\n"
    tight = Limits(cpu_seconds=2)
    jobs += [Job(code=spin.format(s=s), tests=TestSpec(style="run"), limits=tight) for s in (0.3, 0.8, 1.2)]
    jobs += [Job(code=spin.format(s=s), tests=TestSpec(style="run"), limits=tight) for s in (2.5, 4)]
    jobs += [Job(code="import time\ntime.sleep(0.5)\n", tests=TestSpec(style="run"), limits=Limits(cpu_seconds=1))]
    return jobs


@pytest.mark.slow
def test_verdicts_are_identical_with_both_cores_busy():
    jobs = _sample()
    quiet = [r.status for r in run_many(jobs)]
    hogs = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(2)]
    try:
        busy = [r.status for r in run_many(jobs)]
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    assert busy == quiet
    assert sum(s.value == "passed" for s in quiet) == 30 + 3 + 1
