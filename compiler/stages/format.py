"""``format``: rows → training records in TRL's column conventions (``prompt``/``completion`` or
``messages``), labelled with a variant name."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import polars as pl
from pydantic import Field

from compiler.codeparse import split_function
from compiler.stages.base import Columns, Params, Stage, StageOutput, derive_id, parent_link, register, rejections
from compiler.stages.generate import TEACHER_TEMPLATE, render, template_columns, with_signature_hint

if TYPE_CHECKING:
    from compiler.runner import StageContext

RECORD_COLUMNS = ("row_id", "parent_ids", "task_id", "source", "variant")
MESSAGE = pl.Struct({"role": pl.String, "content": pl.String})


def persd_prompt(instruction: str, code_prefix: str) -> str:
    """PERsD's text-to-code prompt: the task as a docstring above the code up to the signature."""
    return f'"""\n{instruction.strip()}\n"""\n\n{code_prefix}'


def persd_pair(instruction: str, code: str, entry_point: str | None) -> tuple[str, str] | None:
    """(prompt, body completion) or None when the function cannot be split out of ``code``."""
    parts = split_function(code, entry_point)
    if parts is None:
        return None
    return persd_prompt(instruction, parts.prefix + parts.header), parts.body


def fenced(code: str) -> str:
    return f"```python\n{code.rstrip()}\n```"


@register
class Format(Stage):
    """Turns rows into training records. ``prompt: instruction`` renders ``template`` from the task row
    (by default the instruction and the required signature) and completes with the code
    (``completion: code``, fenced when ``fence``) or the raw answer (``completion: answer``);
    ``prompt: persd`` uses PERsD's text-to-code format (the task as a docstring, then the code up to the
    function header) and completes with the function body. ``style: prompt_completion`` writes
    ``prompt``/``completion`` strings; ``style: messages`` writes a ``messages`` list (optional system,
    user, assistant). Rows whose function cannot be split (``persd``) are dropped with reason
    ``unsplittable``."""

    name = "format"
    version = 1

    class Params(Params):
        style: Literal["prompt_completion", "messages"] = Field(default="prompt_completion",
                                                                 description="TRL dataset format")
        prompt: Literal["instruction", "persd"] = Field(default="instruction", description="prompt format")
        template: str = Field(default=TEACHER_TEMPLATE, description="user prompt template for `instruction`")
        completion: Literal["code", "answer"] = Field(default="code", description="what the model learns to write")
        code: str = Field(default="code", description="code column")
        answer: str = Field(default="answer", description="raw answer column (completion: answer)")
        fence: bool = Field(default=True, description="wrap code completions in a ```python fence")
        system: str | None = Field(default=None, description="system message (style: messages)")
        variant: str = Field(default="StanD", description="variant name stored with every record")

    @classmethod
    def columns(cls, params: "Format.Params") -> Columns:
        if params.prompt == "persd":
            reads: tuple[str, ...] = ("instruction", "entry_point", "{code}")
        else:
            target = "{answer}" if params.completion == "answer" else "{code}"
            reads = (*template_columns(params.template), target)
        content = ("prompt", "completion") if params.style == "prompt_completion" else ("messages",)
        return Columns.of(params, reads=(*reads, "source"), writes=(*RECORD_COLUMNS, *content), replaces=True)

    def run(self, frame: pl.DataFrame, ctx: "StageContext") -> StageOutput:
        pairs = [self._pair(row) for row in frame.iter_rows(named=True)]
        ok = pl.Series([pr is not None for pr in pairs], dtype=pl.Boolean)
        rows = frame.filter(ok)
        done = [pr for pr in pairs if pr is not None]
        records = self._records(rows, [pr[0] for pr in done], [pr[1] for pr in done])
        return StageOutput(records, rejections(frame.filter(~ok), "unsplittable",
                                               "the function header could not be separated from its body"))

    def _pair(self, row: dict[str, Any]) -> tuple[str, str] | None:
        p = self.params
        if p.prompt == "persd":
            return persd_pair(row["instruction"], row[p.code], row.get("entry_point"))
        prompt = render(p.template, with_signature_hint(row))
        if p.completion == "answer":
            return prompt, row[p.answer]
        return prompt, fenced(row[p.code]) if p.fence else row[p.code]

    def _records(self, rows: pl.DataFrame, prompts: list[str], completions: list[str]) -> pl.DataFrame:
        p = self.params
        base = rows.select(
            pl.Series("row_id", [derive_id(r, self.name, p.variant) for r in rows["row_id"]], dtype=pl.String),
            parent_link(),
            pl.col("task_id"), pl.col("source"), pl.lit(p.variant).alias("variant"),
        )
        if p.style == "prompt_completion":
            return base.with_columns(pl.Series("prompt", prompts, dtype=pl.String),
                                     pl.Series("completion", completions, dtype=pl.String))
        messages = [self._messages(pr, co) for pr, co in zip(prompts, completions)]
        return base.with_columns(pl.Series("messages", messages, dtype=pl.List(MESSAGE)))

    def _messages(self, prompt: str, completion: str) -> list[dict[str, str]]:
        system = [{"role": "system", "content": self.params.system}] if self.params.system else []
        return system + [{"role": "user", "content": prompt}, {"role": "assistant", "content": completion}]
