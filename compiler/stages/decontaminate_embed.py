"""``decontaminate_embed``: the embedding-and-judge decontamination of AMR-Evol (METHODS §2(b) A0): every
benchmark problem queries an embedding index of the training rows, and its nearest rows go to a judge
model that decides "same problem?". The n-gram ``decontaminate`` stays the cheap default."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import polars as pl
from pydantic import Field

from compiler.embed.search import top_k
from compiler.llm.types import LLMRequest
from compiler.stages.base import Columns, Params, Stage, StageOutput, register, rejections
from compiler.stages.decontaminate import BenchmarkName, MbppSplit, _load, problem_texts
from compiler.stages.dedup import present_columns, row_texts
from compiler.stages.sources import resolve_path
from evals.problems import MBPP_SPLITS

if TYPE_CHECKING:
    from compiler.runner import StageContext

JUDGE_SYSTEM = "You decide whether two programming problems are the same problem."
JUDGE = """\
Are these two programming problems the same problem: the same task, even if worded differently or with \
different names? Answer with one word: yes or no.

Problem A:
{benchmark}

Problem B:
{training}

Answer:"""
_ANSWER = re.compile(r"^\W*(yes|no)\b", re.I)


@register
class DecontaminateEmbed(Stage):
    """Drops rows a judge model finds to be a benchmark problem (reason ``contaminated``; the detail
    starts with the benchmark task id, e.g. ``humaneval:HumanEval/12``, then the cosine). Each problem
    of ``benchmarks`` (its task text) is embedded with the recipe's embedder and queries the rows'
    ``columns`` text (those present); its ``top_k`` nearest rows (at least ``min_score`` similar, when
    set) go to the judge, one request per (problem, row) pair, answered ``yes`` or ``no`` (anything else
    keeps the row). MBPP is checked on ``mbpp_splits`` only; the ``*_path`` params point at local copies."""

    name = "decontaminate_embed"
    version = 1
    roles = ("judge",)
    embeds = True
    scope = "frame"

    class Params(Params):
        columns: list[str] = Field(default_factory=lambda: ["instruction"], description="columns embedded (those present)")
        benchmarks: list[BenchmarkName] = Field(default_factory=lambda: ["humaneval", "mbpp", "mbpp+"], min_length=1,
                                                description="benchmarks whose problems query the rows (AMR-Evol: HumanEval, MBPP, EvalPlus)")
        mbpp_splits: list[MbppSplit] = Field(default_factory=lambda: ["test", "validation", "prompt"],
                                             description="MBPP splits checked against")
        top_k: int = Field(default=5, ge=1, description="nearest rows per problem sent to the judge (AMR-Evol: 5)")
        min_score: float | None = Field(default=None, ge=-1, le=1, description="send only pairs at least this similar "
                                        "(default: every top-k pair, as the paper does)")
        max_tokens: int = Field(default=8, ge=1, description="judge completion length limit")
        template: str = Field(default=JUDGE, description="the judge's prompt; {benchmark} and {training} are filled in")
        humaneval_path: str | None = Field(default=None, description="local HumanEval jsonl(.gz)")
        mbpp_path: str | None = Field(default=None, description="local (sanitized) MBPP file")
        mbpp_plus_path: str | None = Field(default=None, description="local MbppPlus.jsonl.gz")

    @classmethod
    def columns(cls, params: "DecontaminateEmbed.Params") -> Columns:
        return Columns.of(params, any_of=("{columns}",))

    @classmethod
    def prior_requests(cls, params: "DecontaminateEmbed.Params") -> dict[str, tuple[float, float, float]]:
        return {"judge": (0.0, 1.0, float(params.top_k))}   # top_k per problem; rows and problems vary

    def problems(self, ctx: "StageContext") -> list[tuple[str, str]]:
        """(label, task text) of every benchmark problem."""
        p = self.params
        raw = {"humaneval": p.humaneval_path, "mbpp": p.mbpp_path, "mbpp+": p.mbpp_plus_path}
        splits = tuple(s for s in MBPP_SPLITS if s in p.mbpp_splits)
        out = []
        for bench in dict.fromkeys(p.benchmarks):
            path = str(resolve_path(raw[bench], ctx.base_dir)) if raw[bench] else None
            out += [(f"{pr.benchmark}:{pr.task_id}", problem_texts(pr)[0]) for pr in _load(bench, path, splits)]
        return out

    def run(self, frame: pl.DataFrame, ctx: "StageContext") -> StageOutput:
        texts = row_texts(frame, present_columns(frame, self.params.columns, self.name))
        problems = self.problems(ctx)
        pairs = self._pairs(texts, problems, ctx) if frame.height else []
        rows = frame["row_id"].to_list()
        requests = [LLMRequest(messages=(("system", JUDGE_SYSTEM), ("user", self.params.template.format(
            benchmark=problems[b][1].strip(), training=texts[t].strip()))), temperature=0.0,
            max_tokens=self.params.max_tokens, served_rows=(rows[t],)) for b, t, _ in pairs]
        found: dict[int, str] = {}
        for (b, t, score), answer in zip(pairs, ctx.generate("judge", requests)):
            m = _ANSWER.match(answer.text or "") if answer.ok else None
            if m and m.group(1).lower() == "yes" and t not in found:
                found[t] = f"{problems[b][0]} (the judge: same problem; cosine {score:.3f})"
        marked = frame.with_columns(pl.Series("_why", [found.get(i) for i in range(frame.height)], dtype=pl.String))
        dropped = marked.filter(pl.col("_why").is_not_null())
        return StageOutput(marked.filter(pl.col("_why").is_null()).drop("_why"),
                           rejections(dropped, "contaminated", pl.col("_why")))

    def _pairs(self, texts: list[str], problems: list[tuple[str, str]], ctx: "StageContext") -> list[tuple[int, int, float]]:
        """(problem, row, cosine) for each problem's nearest rows, best first per problem."""
        embeddings = ctx.embeddings()
        rows = embeddings.vectors(texts)
        queries = embeddings.vectors([t for _, t in problems])
        idx, scores = top_k(rows, queries, self.params.top_k)
        floor = self.params.min_score
        return [(b, int(t), float(s)) for b, (ts, ss) in enumerate(zip(idx, scores)) for t, s in zip(ts, ss)
                if floor is None or s >= floor]


__all__ = ["DecontaminateEmbed"]
