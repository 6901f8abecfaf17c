"""``extract_code``: the code inside a model answer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import polars as pl
from pydantic import Field

from compiler.codeparse import extract_code, strip_main_guard
from compiler.stages.base import Params, Stage, StageOutput, register, rejections

if TYPE_CHECKING:
    from compiler.runner import StageContext


@register
class ExtractCode(Stage):
    """Takes the code out of a text column (default ``answer``) into ``code``: a fenced Python block
    chosen by ``block`` (``auto``: the last block that defines the task's entry point, else the
    longest block defining a function, else the last block), else the whole text when it parses,
    else the code-looking lines. Top-level ``if __name__ == "__main__":`` demo blocks are removed.
    Rows with no code are dropped with reason ``no_code``."""

    name = "extract_code"
    version = 1
    reads = ("{column}", "entry_point")
    writes = ("{output}",)

    class Params(Params):
        column: str = Field(default="answer", description="text column to read")
        output: str = Field(default="code", description="column to write")
        block: Literal["auto", "first", "last", "longest", "all"] = Field(
            default="auto", description="which fenced block to take")
        strip_main: bool = Field(default=True, description='drop `if __name__ == "__main__":` blocks')

    def run(self, frame: pl.DataFrame, ctx: "StageContext") -> StageOutput:
        p = self.params
        codes = []
        for text, entry in zip(frame[p.column], frame["entry_point"]):
            code = extract_code(text or "", entry_point=entry, how=p.block)
            if code is not None and p.strip_main:
                code = strip_main_guard(code)
            codes.append(code if code and code.strip() else None)
        out = frame.with_columns(pl.Series(p.output, codes, dtype=pl.String))
        missing = out.filter(pl.col(p.output).is_null())
        return StageOutput(out.filter(pl.col(p.output).is_not_null()),
                           rejections(missing, "no_code", f"no code found in `{p.column}`"))
