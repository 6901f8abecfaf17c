"""The sandbox: the one definition of "passes" for the compiler and the evaluator.

``run_many(jobs)`` runs programs against their tests on a warm pool of fork servers, isolated by
bubblewrap (or the strongest fallback this machine allows) and judged in the parent process;
``run_one`` is the single-job form, ``isolation_report`` says what this machine gives, and
``job_key`` is the execution-cache key. See ``evals/sandbox/README.md`` for the semantics.
"""

from evals.sandbox.api import isolation_report, run_many, run_one
from evals.sandbox.cache import ExecCache, InMemoryCache, job_key, runtime_version
from evals.sandbox.pool import SandboxUnavailable, shutdown
from evals.sandbox.types import ExecResult, Job, Limits, Status, TestCase, TestSpec

__all__ = [
    "ExecResult", "Job", "Limits", "Status", "TestCase", "TestSpec",
    "run_many", "run_one", "isolation_report", "job_key", "runtime_version",
    "ExecCache", "InMemoryCache", "SandboxUnavailable", "shutdown",
]
