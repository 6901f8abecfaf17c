"""``akd_filter``: the light filter of METHODS §4(b) K2 — keep teacher answers that hold code which
parses. (Deduplication is the shared ``dedup`` stage; AKD runs no tests: Code Alpaca has none.)"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

import polars as pl

from compiler.codeparse import extract_code
from compiler.stages.base import Params, Stage, StageOutput, empty_rejections, register, rejections

if TYPE_CHECKING:
    from compiler.runner import StageContext


def code_of(text: str | None, fmt: str, entry_point: str | None) -> str | None:
    """The answer's code: a completion-style answer is code as it stands (the prompt opened the
    fence); a chat answer's code is taken out of its fenced block (or its code lines)."""
    if fmt == "completion":
        code = text or ""
    else:
        code = extract_code(text or "", entry_point=entry_point) or ""
    return code if code.strip() else None


def syntax_problem(code: str) -> str | None:
    try:
        ast.parse(code)
    except SyntaxError as exc:
        return f"line {exc.lineno}: {exc.msg}"
    except ValueError as exc:        # e.g. a null byte in the source
        return str(exc)
    return None


@register
class AkdFilter(Stage):
    """Takes the code out of ``teacher_text`` (a completion-style answer is all code; a chat answer's
    fenced block) into ``teacher_code`` and drops answers with no code (reason ``no_code``) or code
    that ``ast.parse`` rejects (reason ``syntax_error``; detail: line and message)."""

    name = "akd_filter"
    version = 1
    reads = ("teacher_text", "teacher_format", "entry_point")
    writes = ("teacher_code",)

    class Params(Params):
        pass

    def run(self, frame: pl.DataFrame, ctx: "StageContext") -> StageOutput:
        codes, problems = [], []
        for text, fmt, entry in zip(frame["teacher_text"], frame["teacher_format"], frame["entry_point"]):
            code = code_of(text, fmt, entry)
            codes.append(code)
            problems.append(syntax_problem(code) if code is not None else None)
        marked = frame.with_columns(pl.Series("teacher_code", codes, dtype=pl.String),
                                    pl.Series("_problem", problems, dtype=pl.String))
        no_code = pl.col("teacher_code").is_null()
        bad = pl.col("_problem").is_not_null()
        dropped = pl.concat([empty_rejections(),
                             rejections(marked.filter(no_code), "no_code", "the teacher's answer holds no code"),
                             rejections(marked.filter(bad), "syntax_error", pl.col("_problem"))])
        return StageOutput(marked.filter(~no_code & ~bad).drop("_problem"), dropped)
