"""Teacher-written tests run against an answer (AnsRepair's first step, METHODS §2(c)): the teacher
writes ``test_solution()`` for a question and a solution, and the solution runs with it in the
sandbox. Used by the ``teacher_tests`` stage (the AnsRepair baseline) and by ``evolve_response``'s
optional self-test gate, which only labels."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

from compiler.codeparse import extract_code
from compiler.llm.types import LLMRequest
from compiler.methods.amr_evol.templates import TESTS, TESTS_SYSTEM
from evals import codeinfo
from evals.sandbox.types import Job, Limits, TestCase, TestSpec


def tests_request(row_id: str, instruction: str, code: str, *, max_tokens: int = 1024,
                 system: str = TESTS_SYSTEM, template: str = TESTS) -> LLMRequest:
    user = template.format(instruction=instruction.strip(), code=code.rstrip() + "\n")
    return LLMRequest(messages=(("system", system), ("user", user)), temperature=0.0, max_tokens=max_tokens,
                      served_rows=(row_id,))


def calls_of_tests(test_code: str) -> list[str]:
    """The calls that run a test program: each top-level ``test_*`` function, else its asserts."""
    tree = codeinfo.parse(test_code)
    if tree is None:
        return []
    funcs = [n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test")]
    if funcs:
        return [f"{name}()" for name in funcs]
    return [ast.unparse(n) for n in tree.body if isinstance(n, ast.Assert)]


@dataclass(frozen=True)
class TeacherTest:
    code: str | None        # the test program (None: the answer held none)
    job: Job | None


def teacher_test(answer_text: str | None, solution: str, cpu_seconds: float = 5.0) -> TeacherTest:
    """The test program in the teacher's answer, and the job that runs the solution against it (the
    test functions are defined after the solution, then called one by one)."""
    test_code = extract_code(answer_text or "") if answer_text else None
    calls = calls_of_tests(test_code or "")
    if not calls:
        return TeacherTest(test_code, None)
    defs = test_code if any(c.endswith("()") for c in calls) else ""
    spec = TestSpec(style="mbpp", setup=defs, cases=tuple(TestCase(kind="assert", code=c) for c in calls))
    return TeacherTest(test_code, Job(code=solution, tests=spec, limits=Limits(cpu_seconds=cpu_seconds)))


def verdicts(tests: list[TeacherTest], results: list[Any]) -> list[tuple[bool | None, str]]:
    """(passed, status) per test: None and ``no_test`` when the teacher wrote no usable test."""
    it = iter(results)
    out: list[tuple[bool | None, str]] = []
    for t in tests:
        if t.job is None:
            out.append((None, "no_test"))
        else:
            r = next(it)
            out.append((bool(r.passed), r.status.value))
    return out
