"""``static_check``: SODA's static tool-based view (METHODS §3(b) S2): the answer's first fenced code
block, in the language its fence names, compiled and run in the sandbox, as the authors' tool does
(their ``check_complete``, ``judge_pl``, ``extract_code_blocks`` and per-language runners). No tests
run: passing means it compiles and runs to the end.

Outcome per answer, ``pass`` / ``fail`` / ``unknown``:

- ``fail`` when the fences are unbalanced (an incomplete answer is not run), or the program does not
  compile, raises, exits with an error or runs out of time;
- ``unknown`` when there is no fenced block, its language is not one of those the sandbox runs
  (python, c, cpp, java, go, javascript, typescript) or its toolchain is not installed here;
- ``pass`` otherwise.

A failure is named with the five error types of prompt B where it can be (:func:`error_type`): a
syntax or compile error, an undefined name, a type error, a timeout; any other runtime error is a
Logical Error (the program runs and goes wrong).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import polars as pl
from pydantic import Field

from compiler.codeparse import fenced_blocks
from compiler.stages.base import Params, Stage, StageOutput, register
from evals.sandbox import toolchains
from evals.sandbox.types import ExecResult, Job, Limits, Status, TestSpec

if TYPE_CHECKING:
    from compiler.runner import StageContext

_FENCE_LINE = re.compile(r"^[ \t]*(```|~~~)", re.M)
_NAME_HINTS = re.compile(r"undeclared|was not declared|cannot find symbol|not found in this scope|"
                         r"undefined reference|undefined:|ReferenceError|is not defined", re.I)
_TYPE_HINTS = re.compile(r"incompatible types?|invalid conversion|cannot be converted|invalid operands|"
                         r"cannot convert|TypeError|mismatched types", re.I)
_SYNTAX_HINTS = re.compile(r"SyntaxError", re.I)
RUNNABLE = ("python", "c", "cpp", "java", "go", "javascript", "typescript")


def first_block(text: str) -> tuple[str, str] | None:
    """(language, code) of the answer's first fenced block; the language is the fence's tag made
    canonical (``py`` → python, ``c++`` → cpp, ``js`` → javascript), "" when the fence has none."""
    blocks = fenced_blocks(text, python_only=False)
    if not blocks:
        return None
    tag = blocks[0].lang
    return (toolchains.normalise(tag) if tag else ""), blocks[0].code


def complete(text: str) -> bool:
    """The authors' ``check_complete``: the fence lines are balanced."""
    return len(_FENCE_LINE.findall(text)) % 2 == 0


def error_type(result: ExecResult) -> str | None:
    """The error type of prompt B a failed run shows, or None when it shows none of them."""
    if result.status is Status.TIMEOUT:
        return "Timeout Error"
    failure = result.first_failure or {}
    kind, message = failure.get("error_type") or "", f"{failure.get('message') or ''}\n{result.stderr}"
    if kind in ("SyntaxError", "IndentationError", "TabError"):
        return "Syntax Error"
    if kind in ("NameError", "UnboundLocalError"):
        return "Name Error"
    if kind == "TypeError":
        return "Type Error"
    if kind in ("CompileError", "RuntimeError"):       # other languages: read the compiler or runtime
        for hints, name in ((_NAME_HINTS, "Name Error"), (_TYPE_HINTS, "Type Error"),
                            (_SYNTAX_HINTS, "Syntax Error")):
            if hints.search(message):
                return name
        return "Syntax Error" if kind == "CompileError" else "Logical Error"
    if result.status in (Status.ERROR, Status.MEMORY, Status.OUTPUT_LIMIT, Status.KILLED):
        return "Logical Error"
    return None


def _detail(result: ExecResult) -> str:
    failure = result.first_failure or {}
    head = f"{failure.get('error_type')}: {failure.get('message')}" if failure else result.status.value
    tail = result.stderr.strip().splitlines()[-1:] if result.stderr.strip() else []
    return "\n".join([head.strip(), *tail])[:2000]


@register
class StaticCheck(Stage):
    """Compiles and runs the first fenced block of ``code`` (an answer's text) in the sandbox, in the
    language its fence names, without tests (METHODS §3(b) S2). Adds ``{prefix}_language``,
    ``{prefix}_check`` (``pass``, ``fail`` — including unbalanced fences, never run — or ``unknown``:
    no block, a language the sandbox does not run or whose toolchain is missing here),
    ``{prefix}_check_result`` (the output, the error, or why it is unknown) and
    ``{prefix}_error_type`` (for a failure: Syntax, Name, Type, Timeout or Logical Error; see
    :func:`error_type`). Drops nothing."""

    name = "static_check"
    version = 1
    sandbox = True
    reads = ("{code}",)
    writes = ("{prefix}_language", "{prefix}_check", "{prefix}_check_result", "{prefix}_error_type")

    class Params(Params):
        code: str = Field(default="student_text", description="column holding the answer text")
        prefix: str = Field(default="student", description="prefix of the result columns")
        cpu_seconds: float = Field(default=10.0, gt=0, description="CPU-time limit per program (METHODS "
                                   "§3(h)5: 10 s instead of the authors' 100 s)")
        memory_mb: int = Field(default=1024, ge=64, description="address-space limit per program")

    def run(self, frame: pl.DataFrame, ctx: "StageContext") -> StageOutput:
        p = self.params
        limits = Limits(cpu_seconds=p.cpu_seconds, memory_mb=p.memory_mb)
        plans = [self._plan(text or "", limits) for text in frame[p.code]]
        jobs = [plan for plan in plans if isinstance(plan, Job)]
        results = iter(ctx.execute(jobs))
        outcomes = [ran(plan, next(results)) if isinstance(plan, Job) else plan for plan in plans]
        return StageOutput(frame.with_columns(
            pl.Series(f"{p.prefix}_language", [o["language"] for o in outcomes], dtype=pl.String),
            pl.Series(f"{p.prefix}_check", [o["check"] for o in outcomes], dtype=pl.String),
            pl.Series(f"{p.prefix}_check_result", [o["result"] for o in outcomes], dtype=pl.String),
            pl.Series(f"{p.prefix}_error_type", [o["error_type"] for o in outcomes], dtype=pl.String),
        ))

    def _plan(self, text: str, limits: Limits) -> Job | dict[str, Any]:
        """A sandbox job for the answer, or its outcome when nothing is to run."""
        block = first_block(text)
        language = block[0] if block else None
        if not complete(text):
            return _outcome(language, "fail", "incomplete answer: unbalanced code fences")
        if block is None:
            return _outcome(None, "unknown", "no fenced code block")
        if language not in RUNNABLE:
            return _outcome(language or None, "unknown", f"no runner for {language or 'an untagged block'}")
        if not toolchains.available(language):
            return _outcome(language, "unknown", f"no {language} toolchain installed here")
        return Job(code=block[1], tests=TestSpec(style="run", language=language), limits=limits)


def ran(job: Job, result: ExecResult) -> dict[str, Any]:
    """The outcome of a program that was sent to the sandbox."""
    language = job.tests.language
    if result.status is Status.SKIPPED:
        return _outcome(language, "unknown", result.feedback)
    if result.passed:
        return _outcome(language, "pass", result.stdout[:2000])
    return _outcome(language, "fail", _detail(result), error_type(result))


def _outcome(language: str | None, check: str, result: str, error: str | None = None) -> dict[str, Any]:
    return {"language": language, "check": check, "result": result, "error_type": error}
