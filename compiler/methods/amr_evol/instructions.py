"""``self_instruct`` and ``evol_instruct``: AMR-Evol's instruction construction (METHODS §2(b) A0).

Both make new tasks: each new instruction is a task row of its own (a new ``task_id``), linked to the
rows it came from by ``parent_ids`` (self-instruct: its few-shot seeds; evol: the instruction it
harder-made) and labelled with its ``level`` (``self_instruct``, ``complex1``, ``complex2``, ...) and
``parent_task_id``. Deduplication and decontamination are the shared stages, run after these.
"""

from __future__ import annotations

import json
import random
import re
from typing import TYPE_CHECKING, Any, Literal

import polars as pl
from pydantic import Field

from compiler.llm.types import LLMRequest
from compiler.methods.amr_evol.templates import EVOL, EVOL_METHODS, SELF_INSTRUCT, SELF_INSTRUCT_SYSTEM
from compiler.stages.base import (TASK_COLUMNS, TASK_SCHEMA, Columns, Params, Stage, StageOutput, derive_id,
                                  empty_rejections, register)

if TYPE_CHECKING:
    from compiler.runner import StageContext

EvolMethod = Literal["constraints", "uncommon", "reasoning", "misdirection", "complexity"]
LEVEL_SCHEMA = {**TASK_SCHEMA, "level": pl.String, "parent_task_id": pl.String}
_LEAD = re.compile(r"^\s*(?:#+\s*)?(?:\*\*)?(?:new task|task|harder question|rewritten question|question)\s*\d*\s*"
                   r"(?:\*\*)?\s*[:.-]\s*", re.I)


def clean_instruction(text: str | None) -> str:
    """The instruction in a teacher's answer: without a leading label (``New task:``) or surrounding
    quotes and blank lines."""
    body = (text or "").strip()
    body = _LEAD.sub("", body, count=1).strip()
    if len(body) > 1 and body[0] == body[-1] and body[0] in "\"'":
        body = body[1:-1].strip()
    return body


def task_row(row_id: str, parents: list[str], task_id: str, instruction: str, source: str, level: str,
             parent_task: str | None, meta: dict[str, Any]) -> dict[str, Any]:
    return {"row_id": row_id, "parent_ids": parents, "task_id": task_id, "instruction": instruction,
            "entry_point": None, "header": None, "reference_solution": None, "tests": None, "source": source,
            "language": "python", "meta": json.dumps(meta, sort_keys=True), "level": level,
            "parent_task_id": parent_task}


def rejection(row_id: str, task_id: str, reason: str, detail: str | None) -> dict[str, Any]:
    return {"row_id": row_id, "task_id": task_id, "reason": reason, "detail": detail}


def outcome(text: str | None, result: Any, min_chars: int, max_chars: int) -> tuple[str | None, str, str | None]:
    """(instruction, rejection reason, detail): the instruction when the answer holds a usable one."""
    if not result.ok:
        return None, "llm_failed", result.error
    body = clean_instruction(text)
    if len(body) < min_chars:
        return None, "bad_instruction", f"{len(body)} characters (at least {min_chars})"
    if len(body) > max_chars:
        return None, "bad_instruction", f"{len(body)} characters (at most {max_chars})"
    return body, "", None


def frames(rows: list[dict[str, Any]], dropped: list[dict[str, Any]]) -> tuple[pl.DataFrame, pl.DataFrame]:
    rejected = pl.DataFrame(dropped, schema=empty_rejections().schema) if dropped else empty_rejections()
    return pl.DataFrame(rows, schema=LEVEL_SCHEMA), rejected


class _Generating(Params):
    temperature: float = Field(default=0.7, ge=0, description="sampling temperature (AMR-Evol: 0.7)")
    top_p: float = Field(default=1.0, gt=0, le=1, description="nucleus sampling")
    max_tokens: int = Field(default=2048, ge=1, description="completion length limit (AMR-Evol: 2048)")
    min_chars: int = Field(default=20, ge=1, description="shorter instructions are rejected (`bad_instruction`)")
    max_chars: int = Field(default=4000, ge=1, description="longer instructions are rejected (`bad_instruction`)")
    seed: int | None = Field(default=None, description="one fixed sampling seed for every request (default: a "
                             "seed per request from the recipe's `seed` and the new row)")


@register
class SelfInstruct(Stage):
    """The teacher writes ``n`` new instructions, each from ``few_shot`` seed tasks drawn from the input
    rows (a fixed draw per instruction, from the recipe's ``seed``). Its output replaces the frame with
    the new task rows (``level: self_instruct``; ``parent_ids``: the seeds shown), plus the seeds
    themselves with ``keep_seeds`` (``level: seed``). Drops ``llm_failed`` and ``bad_instruction``
    (an answer shorter than ``min_chars`` or longer than ``max_chars``)."""

    name = "self_instruct"
    version = 1
    roles = ("teacher",)
    scope = "frame"

    class Params(_Generating):
        n: int = Field(default=100, ge=1, description="instructions to write (AMR-Evol: 10,000)")
        few_shot: int = Field(default=3, ge=1, description="seed tasks shown in each request")
        keep_seeds: bool = Field(default=False, description="keep the seed tasks in the output (level `seed`)")
        system: str = Field(default=SELF_INSTRUCT_SYSTEM, description="system message")
        template: str = Field(default=SELF_INSTRUCT, description="user message; {examples} is filled with the seeds")

    @classmethod
    def columns(cls, params: "SelfInstruct.Params") -> Columns:
        return Columns.of(params, reads=("instruction",), writes=(*TASK_COLUMNS, "level", "parent_task_id"),
                          replaces=True)

    @classmethod
    def expected_requests(cls, params: "SelfInstruct.Params", frame: pl.DataFrame) -> dict[str, int]:
        return {"teacher": params.n if frame.height else 0}

    @classmethod
    def fixed_requests(cls, params: "SelfInstruct.Params") -> dict[str, int]:
        return {"teacher": params.n}

    @classmethod
    def expected_rows(cls, params: "SelfInstruct.Params", rows: float) -> float:
        return params.n + (rows if params.keep_seeds else 0)

    def run(self, frame: pl.DataFrame, ctx: "StageContext") -> StageOutput:
        seeds = frame.to_dicts()
        planned = [self._plan(i, seeds, ctx.recipe.seed) for i in range(self.params.n)] if seeds else []
        results = ctx.generate("teacher", [self._request(rid, shots) for rid, shots in planned])
        rows, dropped = [], []
        for (rid, shots), result in zip(planned, results):
            task = f"si-{rid[:12]}"
            text, reason, detail = outcome(result.text, result, self.params.min_chars, self.params.max_chars)
            if text is None:
                dropped.append(rejection(rid, task, reason, detail))
                continue
            meta = {"level": "self_instruct", "few_shot": [s["task_id"] for s in shots]}
            rows.append(task_row(rid, [s["row_id"] for s in shots], task, text, "self_instruct", "self_instruct",
                                 None, meta))
        if self.params.keep_seeds:
            rows = [{**{c: s[c] for c in TASK_COLUMNS}, "level": "seed", "parent_task_id": None} for s in seeds] + rows
        out, rejected = frames(rows, dropped)
        return StageOutput(out, rejected)

    def _plan(self, i: int, seeds: list[dict[str, Any]], recipe_seed: int) -> tuple[str, list[dict[str, Any]]]:
        rng = random.Random(f"{recipe_seed}\x1f{self.name}\x1f{i}")
        shots = rng.sample(seeds, min(self.params.few_shot, len(seeds)))
        return derive_id(self.name, recipe_seed, i, *[s["row_id"] for s in shots]), shots

    def _request(self, row_id: str, shots: list[dict[str, Any]]) -> LLMRequest:
        p = self.params
        examples = "\n\n".join(f"Task {k}: {s['instruction'].strip()}" for k, s in enumerate(shots, start=1))
        return LLMRequest(messages=(("system", p.system), ("user", p.template.format(examples=examples))),
                          temperature=p.temperature, top_p=p.top_p, max_tokens=p.max_tokens, seed=p.seed,
                          served_rows=(row_id,))


@register
class EvolInstruct(Stage):
    """Code Evol-Instruct: ``levels`` rounds, each making every instruction of the previous round harder
    with one of ``methods`` (a fixed choice per row). Level k's rows are ``complex{k}`` with the
    previous row as parent (``parent_ids``, ``parent_task_id``) and ``evol_method``; ``keep: all`` keeps
    the input rows and every level, ``last`` only the last level. Drops ``llm_failed`` and
    ``bad_instruction`` (a dropped row has no descendants)."""

    name = "evol_instruct"
    version = 1
    roles = ("teacher",)

    class Params(_Generating):
        levels: int = Field(default=1, ge=1, description="depth of evolution (AMR-Evol: Complex-1 to Complex-3)")
        methods: list[EvolMethod] = Field(default_factory=lambda: list(EVOL_METHODS), min_length=1,
                                          description="evolution methods drawn from, one per row and level")
        keep: Literal["all", "last"] = Field(default="all", description="`all`: input rows and every level; `last`: the last level only")
        template: str = Field(default=EVOL, description="user message; {method} and {instruction} are filled in")

    @classmethod
    def columns(cls, params: "EvolInstruct.Params") -> Columns:
        return Columns.of(params, reads=("instruction",), writes=("level", "parent_task_id", "evol_method"))

    @classmethod
    def expected_requests(cls, params: "EvolInstruct.Params", frame: pl.DataFrame) -> dict[str, int]:
        return {"teacher": params.levels * frame.height}

    @classmethod
    def prior_requests(cls, params: "EvolInstruct.Params") -> dict[str, tuple[float, float, float]]:
        return {"teacher": (float(params.levels),) * 3}

    @classmethod
    def expected_rows(cls, params: "EvolInstruct.Params", rows: float) -> float:
        return rows * (params.levels + 1 if params.keep == "all" else 1)

    def run(self, frame: pl.DataFrame, ctx: "StageContext") -> StageOutput:
        base = frame.with_columns(*[pl.lit(None, dtype=pl.String).alias(c)
                                    for c in ("level", "parent_task_id", "evol_method") if c not in frame.columns])
        base = base.with_columns(pl.col("level").fill_null("seed"))
        levels, dropped, current = [base], [], base.to_dicts()
        for depth in range(1, self.params.levels + 1):
            current, lost = self._evolve(current, depth, ctx)
            dropped += lost
            levels.append(pl.DataFrame(current, schema=base.schema))
        kept = levels if self.params.keep == "all" else levels[-1:]
        rejected = pl.DataFrame(dropped, schema=empty_rejections().schema) if dropped else empty_rejections()
        return StageOutput(pl.concat(kept, how="vertical"), rejected)

    def _evolve(self, rows: list[dict[str, Any]], depth: int, ctx: "StageContext") -> tuple[list[dict], list[dict]]:
        p = self.params
        made = [(row, derive_id(row["row_id"], self.name, depth), self._method(row, depth)) for row in rows]
        requests = [LLMRequest(messages=(("user", p.template.format(method=EVOL_METHODS[m],
                                                                    instruction=row["instruction"].strip())),),
                               temperature=p.temperature, top_p=p.top_p, max_tokens=p.max_tokens, seed=p.seed,
                               served_rows=(rid,)) for row, rid, m in made]
        out, dropped = [], []
        for (row, rid, method), result in zip(made, ctx.generate("teacher", requests, part=f"level{depth}")):
            task = f"evol-{rid[:12]}"
            text, reason, detail = outcome(result.text, result, p.min_chars, p.max_chars)
            if text is None:
                dropped.append(rejection(rid, task, reason, f"level {depth}: {detail}"))
                continue
            meta = {**json.loads(row["meta"] or "{}"), "level": f"complex{depth}", "evol_method": method}
            out.append({**row, "row_id": rid, "parent_ids": [row["row_id"]], "task_id": task, "instruction": text,
                        "entry_point": None, "header": None, "reference_solution": None, "tests": None,
                        "meta": json.dumps(meta, sort_keys=True), "level": f"complex{depth}",
                        "parent_task_id": row["task_id"], "evol_method": method})
        return out, dropped

    def _method(self, row: dict[str, Any], depth: int) -> str:
        methods = self.params.methods
        return methods[int(derive_id(row["row_id"], "method", depth), 16) % len(methods)]
