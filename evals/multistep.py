"""PERsD multi-step inference (METHODS §1(f)): run each program on the tests the model may see, and
let the student refine a failing one with its own refinement prompt, up to R times.

The seen tests are the HumanEval docstring examples and the first MBPP assert (never the hidden
tests, which would leak the answer). A refinement is discarded, and the previous program kept,
when it says the code "is correct", is "none", or leaves fewer than :data:`MIN_REFINE_LINES`
lines of body (METHODS §1(d), last bullet). A program whose seen tests pass, or that has no seen
tests, is carried to the next step unchanged.
"""

from __future__ import annotations

from evals import codeinfo
from evals.completions import ModelInput, PromptFormat, model_input, student_code
from evals.persd_prompts import inference_refine_prompt
from evals.problems import Problem, persd_prompt, seen_tests
from evals.sandbox.types import ExecResult, TestSpec

# PERsD drops refinements "under 2-3 lines"; we count non-blank lines of the function body.
MIN_REFINE_LINES = 2
_NOT_CODE = ("none", "none.", "")


def checkable(problem: Problem) -> TestSpec | None:
    """The seen tests of ``problem``, or None when it has none to run."""
    spec = seen_tests(problem)
    return spec if spec.n_tests else None


def needs_refinement(seen: ExecResult | None) -> bool:
    """Whether a program goes to the student for refinement: its seen tests ran and failed."""
    return seen is not None and not seen.passed


def refine_input(problem: Problem, fmt: PromptFormat, program: str, feedback: str) -> ModelInput:
    """The student's refinement prompt for ``program`` and its seen-test ``feedback``, in the
    same format (raw or chat) as the first step."""
    text = inference_refine_prompt(persd_prompt(problem), student_code(problem, program), feedback)
    return model_input(problem, fmt, text)


def keep_refinement(problem: Problem, text: str, program: str, *,
                    min_lines: int = MIN_REFINE_LINES) -> bool:
    """Whether a refinement (the model's ``text``, which made ``program``) replaces the previous
    program."""
    said = text.strip().lower()
    if "is correct" in said or said in _NOT_CODE:
        return False
    return body_lines(problem, program) >= min_lines


def body_lines(problem: Problem, program: str) -> int:
    """Non-blank lines in the body of the entry point (of the whole program if it has none)."""
    parts = codeinfo.split_at_header(program, problem.entry_point)
    body = parts[2] if parts is not None else program
    return sum(1 for line in body.splitlines() if line.strip())


__all__ = ["MIN_REFINE_LINES", "body_lines", "checkable", "keep_refinement", "needs_refinement", "refine_input"]
