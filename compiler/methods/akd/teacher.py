"""``akd_teacher``: the teacher answers every task under a task-explicit prompt (METHODS §4(b) K1),
and each answer row keeps both sides' prompts, so training can score the teacher on its own prompt.

With ``top_logprobs: k`` each request also asks an OpenAI-compatible teacher (vLLM serves them) for the
log-probabilities of its k best tokens at every generated position; they are kept compactly with the
row (``teacher_topk``) for distillation without the teacher's weights (see ``trainers/losses.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import polars as pl
from pydantic import Field

from compiler.errors import DistillcError
from compiler.llm.types import LLMRequest, LLMResult
from compiler.methods.akd import templates
from compiler.stages.base import Params, Stage, StageOutput, register
from compiler.stages.generate import attach, fan_out
from compiler.stages.sources import resolve_path

if TYPE_CHECKING:
    from compiler.runner import StageContext

TOPK = pl.Struct({"token": pl.List(pl.String), "top_token": pl.List(pl.List(pl.String)),
                  "top_logprob": pl.List(pl.List(pl.Float32))})
COMPLETION_STOPS = ("```",)


@register
class AkdTeacher(Stage):
    """The teacher answers each task ``n`` times under ``prompt``: ``enhanced`` (the task-explicit
    prompt: task, input, requirements), ``plain`` (an Alpaca-style instruction prompt) or a template
    file (``{instruction}``, ``{task}``, ``{input}``, ``{header}``, ``{entry_point}``; a line whose
    fields are all empty is left out). ``prompt_format: completion`` sends raw text that opens a
    ```` ```python ```` fence (a base teacher such as StarCoder; it stops at the closing fence), ``chat``
    one user message (an instruct teacher). ``student_prompt`` is the prompt the student will be
    trained on, with the same choices (default ``plain``). Adds ``teacher_prompt``, ``student_prompt``,
    ``teacher_prompt_variant``, ``teacher_format``, ``teacher_text`` (the answer as generated),
    ``teacher_sample``, ``teacher_call`` and ``teacher_topk`` (with ``top_logprobs``: per generated
    token its text and the k best alternatives with their log-probabilities, for the tokens that
    spell the answer's beginning; else null). Drops ``llm_failed``."""

    name = "akd_teacher"
    version = 1
    roles = ("teacher",)
    reads = ("instruction", "meta", "entry_point", "header")
    writes = ("teacher_prompt", "student_prompt", "teacher_prompt_variant", "teacher_format", "teacher_text",
              "teacher_sample", "teacher_call", "teacher_topk")

    class Params(Params):
        prompt: str = Field(default="enhanced", min_length=1, description="the teacher's prompt: `enhanced` "
                            "(task-explicit), `plain`, or a template file (relative paths: from the recipe)")
        student_prompt: str = Field(default="plain", min_length=1, description="the student's side of each "
                                    "record: `plain`, `enhanced` or a template file")
        prompt_format: templates.PromptFormat = Field(
            default="completion", description="`completion`: raw text opening a code fence (base teachers); "
            "`chat`: one user message (instruct teachers)")
        n: int = Field(default=1, ge=1, description="answers per task (each its own request)")
        temperature: float = Field(default=0.0, ge=0, description="sampling temperature (greedy by default)")
        top_p: float = Field(default=1.0, gt=0, le=1, description="nucleus sampling")
        max_tokens: int = Field(default=512, ge=1, description="completion length limit")
        stop: list[str] | None = Field(default=None, description="stop strings (default: the closing code "
                                       "fence for `completion`, none for `chat`)")
        top_logprobs: int = Field(default=0, ge=0, le=20, description="keep the teacher's k most likely "
                                  "tokens with their log-probabilities at each generated position (an "
                                  "OpenAI-compatible teacher that returns them, e.g. vLLM; 0: off)")
        seed: int | None = Field(default=None, description="one fixed sampling seed for every request of "
                                 "this stage (default: a seed per request from the recipe's `seed`)")

    @classmethod
    def files(cls, params: "AkdTeacher.Params") -> tuple[tuple[str, str], ...]:
        return tuple((k, getattr(params, k)) for k in ("prompt", "student_prompt")
                     if templates.is_file(getattr(params, k)))

    @classmethod
    def expected_requests(cls, params: "AkdTeacher.Params", frame: pl.DataFrame) -> dict[str, int]:
        return {"teacher": params.n * frame.height}

    @classmethod
    def sample_requests(cls, params: "AkdTeacher.Params", tasks: pl.DataFrame) -> list[LLMRequest]:
        """One request per task (a template file is sized as the enhanced prompt)."""
        stage = cls(params)
        teacher = params.prompt if not templates.is_file(params.prompt) else "enhanced"
        text = templates.built_in(teacher, params.prompt_format)
        return [stage._request(templates.render(text, templates.task_fields(r)), 0, r["row_id"])
                for r in tasks.iter_rows(named=True)]

    def run(self, frame: pl.DataFrame, ctx: "StageContext") -> StageOutput:
        p = self.params
        if p.top_logprobs and ctx.recipe.teacher.backend != "openai":
            raise DistillcError(f"stage {ctx.name!r}: top_logprobs needs an OpenAI-compatible teacher "
                                f"(backend: openai), not {ctx.recipe.teacher.backend}")
        teacher, student = self._template(p.prompt, ctx), self._template(p.student_prompt, ctx)
        rows = fan_out(frame, p.n, self.name, "teacher_sample")
        fields = [templates.task_fields(r) for r in rows.iter_rows(named=True)]
        rows = rows.with_columns(
            pl.Series("teacher_prompt", [templates.render(teacher, f) for f in fields], dtype=pl.String),
            pl.Series("student_prompt", [templates.render(student, f) for f in fields], dtype=pl.String),
            pl.lit(p.prompt).alias("teacher_prompt_variant"), pl.lit(p.prompt_format).alias("teacher_format"))
        requests = [self._request(r["teacher_prompt"], r["teacher_sample"], r["row_id"])
                    for r in rows.iter_rows(named=True)]
        results = ctx.generate("teacher", requests)
        rows = rows.with_columns(pl.Series("teacher_topk", [topk_of(r) for r in results], dtype=TOPK))
        out = attach(rows, results, "teacher_text", self.name)
        return StageOutput(out.frame.rename({"teacher_text_call": "teacher_call"}), out.rejected)

    def _template(self, choice: str, ctx: "StageContext") -> str:
        if not templates.is_file(choice):
            return templates.built_in(choice, self.params.prompt_format)
        path = resolve_path(choice, ctx.base_dir)
        try:
            text = path.read_text(encoding="utf-8")
            templates.check_template(text, choice)
        except (OSError, ValueError) as exc:
            raise DistillcError(f"stage {ctx.name!r}: {exc}") from None
        return text

    def _request(self, prompt: str, sample: int, row_id: str) -> LLMRequest:
        p = self.params
        chat = p.prompt_format == "chat"
        stop = tuple(p.stop) if p.stop is not None else (() if chat else COMPLETION_STOPS)
        common: dict[str, Any] = dict(temperature=p.temperature, top_p=p.top_p, max_tokens=p.max_tokens, stop=stop,
                                      seed=p.seed, sample_index=sample, top_logprobs=p.top_logprobs,
                                      served_rows=(row_id,))
        return LLMRequest(messages=(("user", prompt),), **common) if chat else LLMRequest(prompt=prompt, **common)


def topk_of(result: LLMResult) -> dict[str, list] | None:
    """The compact top-k record of an answer: the generated tokens that spell the beginning of its text
    (a server may send a token past a stop string, which the text leaves out), each with its
    alternatives. None when the answer has no log-probabilities."""
    if not result.ok or not result.logprobs:
        return None
    text, spelled = result.text or "", 0
    kept = []
    for token, _, alts in result.logprobs:
        if not token or not text.startswith(token, spelled):
            break
        spelled += len(token)
        kept.append((token, alts))
    if not kept:
        return None
    return {"token": [t for t, _ in kept], "top_token": [[a for a, _ in alts] for _, alts in kept],
            "top_logprob": [[b for _, b in alts] for _, alts in kept]}
