"""The sandbox: the one definition of "passes" for the compiler and the evaluator."""

from evals.sandbox.types import ExecResult, Job, Limits, Status, TestCase, TestSpec

__all__ = ["ExecResult", "Job", "Limits", "Status", "TestCase", "TestSpec"]
