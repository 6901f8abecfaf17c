"""Runs a plan: skips every step whose fingerprint already has a stored output, runs the others in
order, commits each output atomically, and records the corpus version."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import polars as pl

from compiler.errors import BackendError, DistillcError, StageIncomplete
from compiler.plan import Plan, Step, make_plan
from compiler.preflight import run_preflight
from compiler.progress import progress_bar, progress_enabled
from compiler.recipe.loader import LoadedRecipe, load_recipe
from compiler.stages.base import StageOutput
from compiler.store import outputs, versions
from compiler.store.db import Store


@dataclass
class Services:
    """What stages share during one compile: LLM clients per role, the budget, the sandbox cache."""

    loaded: LoadedRecipe
    store: Store
    budget_usd: float | None = None
    clients: dict[str, Any] = field(default_factory=dict)
    ray: Any = None            # a RaySession with executor: ray
    _budget: Any = None
    _embeddings: Any = None

    def budget(self):
        if self._budget is None:
            from compiler.llm.budget import Budget

            cfg = self.loaded.recipe.budget
            total = self.budget_usd if self.budget_usd is not None else cfg.usd
            self._budget = Budget(total, dict(cfg.stages))
        return self._budget

    def client(self, role: str, model: str | None = None):
        """The client of the recipe's ``role`` model; with ``model``, the same config serving another
        model name or path (a student checkpoint per PERsD round), each its own client."""
        key = role if model is None else f"{role}@{model}"
        if key not in self.clients:
            from compiler.llm.client import LLMClient

            config = self.loaded.recipe.model_for(role)
            if config is None:
                raise DistillcError(f"the recipe has no `{role}:` model")
            if model is not None:
                config = config.model_copy(update={"model": model, "revision": None})
            self.clients[key] = LLMClient(config, store=self.store, role=role, budget=self.budget())
            self.clients[key].remote = self.ray
        return self.clients[key]

    def embeddings(self):
        """The recipe's embedder over the store's embedding cache (loaded on first use)."""
        if self._embeddings is None:
            from compiler.embed import Embeddings

            self._embeddings = Embeddings(self.loaded.recipe.embedder, self.store, self.loaded.base_dir)
        return self._embeddings

    @property
    def embeddings_computed(self) -> int:
        return self._embeddings.computed if self._embeddings is not None else 0

    @property
    def embeddings_cached(self) -> int:
        return self._embeddings.cached if self._embeddings is not None else 0

    def close(self) -> None:
        for client in self.clients.values():
            client.close()
        if self._embeddings is not None:
            self._embeddings.close()
        if self.ray is not None:
            self.ray.close()
            self.ray = None

    @property
    def calls_sent(self) -> int:
        return sum(c.calls_sent for c in self.clients.values())

    @property
    def usd(self) -> float:
        return sum(c.usd for c in self.clients.values())


@dataclass
class StageContext:
    """What a stage may use while it runs."""

    step: Step
    services: Services
    tasks_fingerprint: str
    plan: Plan | None = None
    requests: int = 0
    failures: list[Any] = field(default_factory=list)   # LLM results that failed for good

    @property
    def name(self) -> str:
        return self.step.name

    @property
    def fingerprint(self) -> str:
        return self.step.fingerprint

    @property
    def recipe(self):
        return self.services.loaded.recipe

    @property
    def base_dir(self) -> Path:
        return self.services.loaded.base_dir

    @property
    def store(self) -> Store:
        return self.services.store

    def progress(self, total: int | None, desc: str | None = None):
        return progress_bar(total, desc or self.name)

    def generate(self, role: str, requests: Sequence[Any], *, model: str | None = None,
                 part: str | None = None) -> list[Any]:
        """LLM results for ``requests`` (in order) from the recipe's ``role`` model, through the cache
        and the ledger. ``model`` swaps in another model name or path with the same config (e.g. the
        student checkpoint of a later PERsD round). ``part`` labels a second kind of call of the same
        stage in the ledger (stage ``<name>:<part>``; its budget is the stage's)."""
        if not requests:
            return []
        client = self.services.client(role, model)
        requests = [seeded(r, self.recipe.seed) for r in requests]
        label = f"{self.name}:{part}" if part else self.name
        results = client.generate(requests, stage=label, stage_fp=self.fingerprint,
                                  progress=progress_enabled())
        self.requests += len(results)
        self.failures.extend(r for r in results if not r.ok)
        return results

    def check_failures(self) -> None:
        """Refuse to save a stage whose requests failed only for now (they are retried by the next
        compile); refuse one whose every request failed; warn about the rest."""
        if not self.failures:
            return
        reasons = Counter((r.error or "error").split(":", 1)[0] for r in self.failures)
        summary = ", ".join(f"{k}: {n}" for k, n in reasons.most_common())
        transient = [r for r in self.failures if r.transient]
        if transient:
            raise StageIncomplete(
                f"stage {self.name!r}: {len(transient)} of {self.requests} LLM requests failed for now "
                f"({summary}; last: {transient[-1].error}); the stage was not saved and the answers received "
                "are cached: compile again to retry the failed requests")
        if len(self.failures) == self.requests:
            raise BackendError(f"stage {self.name!r}: all {self.requests} LLM requests failed "
                               f"({summary}; first: {self.failures[0].error})")
        print(f"distillc: warning: stage {self.name!r}: {len(self.failures)} of {self.requests} LLM requests "
              f"failed ({summary}); their rows are dropped with reason llm_failed", file=sys.stderr)

    def embeddings(self):
        """The recipe's embedder (:class:`compiler.embed.Embeddings`): vectors cached in the store,
        each text embedded once; only for stages that declare ``embeds = True``."""
        if not self.step.cls or not self.step.cls.embeds_for(self.step.params):
            raise RuntimeError(f"stage {self.name!r} embeds text but does not declare `embeds = True`")
        return self.services.embeddings()

    def execute(self, jobs: Sequence[Any]) -> list[Any]:
        """Sandbox results for ``jobs`` (in order), through the store's execution cache."""
        from compiler.store.exec_cache import StoreExecCache
        from evals.sandbox import run_many

        if not jobs:
            return []
        with self.progress(len(jobs), f"{self.name} (sandbox)") as bar:
            if self.services.ray is not None:
                return self.services.ray.execute(list(jobs), StoreExecCache(self.store), bar.update)
            return run_many(list(jobs), cache=StoreExecCache(self.store), progress=bar.update)

    def tasks(self) -> pl.DataFrame:
        """The normalised task table of this compile (the sources output)."""
        return outputs.load_output(self.store, self.tasks_fingerprint)

    def earlier(self, name: str) -> Step:
        """The step named ``name`` that runs before this one (its fingerprint is an ancestor of
        this stage's, so reading it keeps the output a function of the fingerprint)."""
        steps = self.plan.steps[: self.step.index] if self.plan is not None else ()
        found = [s for s in steps if s.name == name]
        if not found:
            names = ", ".join(s.name for s in steps) or "none"
            raise DistillcError(f"stage {self.name!r}: no earlier stage named {name!r} (earlier: {names})")
        return found[0]

    def output_of(self, name: str) -> pl.DataFrame:
        """The stored output of the earlier step ``name`` (see :meth:`earlier`)."""
        return outputs.load_output(self.store, self.earlier(name).fingerprint)


STORE_WAIT_SECONDS = 20.0   # how long a compile waits for a store another process holds (a viewer's read)
SEED_BITS = 31   # OpenAI-compatible servers and llama.cpp take 32-bit seeds; vLLM and torch any int


def request_seed(recipe_seed: int, row_id: str, sample_index: int) -> int:
    """The sampling seed of one request: a hash of the recipe's seed, the row it serves and its
    sample index, so a new recipe seed draws new samples and the same seed the same ones."""
    digest = hashlib.sha256(f"{recipe_seed}\x1f{row_id}\x1f{sample_index}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % (1 << SEED_BITS)


def seeded(req: Any, recipe_seed: int) -> Any:
    """``req`` with its seed set from the recipe's when it samples (temperature > 0) and has none;
    greedy requests stay unseeded (their answer does not depend on a seed, so neither does their
    cache key)."""
    if req.seed is not None or req.temperature <= 0:
        return req
    row = req.served_rows[0] if req.served_rows else ""
    return dataclasses.replace(req, seed=request_seed(recipe_seed, row, req.sample_index))


@dataclass(frozen=True)
class CompileResult:
    version: versions.Version
    plan: Plan
    stages_run: list[str]
    stages_cached: list[str]
    llm_calls: int
    usd: float
    seconds: float
    embeddings_computed: int = 0
    embeddings_cached: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "corpus": self.version.corpus,
            "version": self.version.version,
            "ref": self.version.ref,
            "fingerprint": self.version.fingerprint,
            "rows": self.version.rows,
            "stages_run": len(self.stages_run),
            "stages_cached": len(self.stages_cached),
            "stages": [{"name": s.name, "uses": s.uses, "fingerprint": s.fingerprint,
                        "cached": s.name in self.stages_cached} for s in self.plan.steps],
            "llm_calls": self.llm_calls,
            "embeddings_computed": self.embeddings_computed,
            "embeddings_cached": self.embeddings_cached,
            "usd": round(self.usd, 6),
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class RunSettings:
    """How a compile runs (never what it computes): partition size, DuckDB's memory limit."""

    partition_rows: int | None = None      # None: sized from each stage's input
    memory_limit: str = "1GB"              # DuckDB's own buffer memory; beyond it, it spills to disk
    executor: str = "local"                # local | ray
    ray_address: str | None = None


def compile_recipe(recipe_path: str | Path, store_path: str, *, budget_usd: float | None = None,
                   partition_rows: int | None = None, executor: str | None = None,
                   ray_address: str | None = None) -> CompileResult:
    t0 = time.perf_counter()
    loaded = load_recipe(recipe_path)       # bad input fails here, before the store is touched
    plan = make_plan(loaded)
    run_preflight(plan, store_path)         # refusals that need the store or the machine, before writing
    settings = RunSettings(partition_rows=partition_rows or loaded.recipe.partition_rows,
                           memory_limit=os.environ.get("DISTILLC_DUCKDB_MEMORY", "1GB"),
                           executor=executor or loaded.recipe.executor, ray_address=ray_address)
    ray = None
    if settings.executor == "ray":                # a cluster that does not answer fails before the store opens
        from compiler.ray_exec import RaySession

        ray = RaySession(settings.ray_address)
    existed = Path(store_path).exists()
    try:
        store = Store.open(store_path, wait_seconds=STORE_WAIT_SECONDS)
        store.limit_memory(settings.memory_limit)
    except BaseException:
        if ray is not None:
            ray.close()
        raise
    services = Services(loaded, store, budget_usd, ray=ray)
    try:
        run, cached = _run_steps(plan, services, settings)
        version = _record_version(plan, store)
    except BaseException:
        services.close()
        _discard_if_empty(store, store_path, existed)
        raise
    services.close()
    result = CompileResult(version, plan, run, cached, services.calls_sent, services.usd,
                           time.perf_counter() - t0, services.embeddings_computed, services.embeddings_cached)
    store.close()
    return result


def _run_steps(plan: Plan, services: Services, settings: RunSettings) -> tuple[list[str], list[str]]:
    store = services.store
    done = outputs.cached_fingerprints(store, [s.fingerprint for s in plan.steps])
    run, cached = [], []
    with progress_bar(len(plan.steps), f"compile {plan.loaded.recipe.name}") as bar:
        for step in plan.steps:
            bar.set_postfix_str(step.name)
            if step.fingerprint in done:
                cached.append(step.name)
            else:
                _run_one(plan, step, services, settings)
                run.append(step.name)
            bar.update(1)
    return run, cached


def _run_one(plan: Plan, step: Step, services: Services, settings: RunSettings) -> None:
    """Run a step's partitions not yet committed, then mark it done (see :mod:`compiler.partitions`)."""
    from compiler.partitions import StageRun

    store, started = services.store, time.perf_counter()
    if step.cls is None:
        layout = _run_sources(step, services, settings)
    else:
        tasks_fp = plan.steps[0].fingerprint
        layout = StageRun(store, step, lambda frame: _run_step(step, frame, services, tasks_fp, plan),
                          settings.partition_rows, services.ray, str(services.loaded.base_dir)).run()
    meta = outputs.OutputMeta(
        fingerprint=step.fingerprint, stage=step.name, uses=step.uses, stage_version=step.version,
        params=_params_json(step), parents=[step.parent] if step.parent else [], rows_in=0, rows_out=0,
        seconds=time.perf_counter() - started, layout=layout, columns=outputs.run_columns(store, step.fingerprint))
    outputs.finish_stage(store, meta, step.parent)


SOURCE_BATCH_ROWS = 50_000


def _run_sources(step: Step, services: Services, settings: RunSettings) -> str:
    """The task table, read and committed a batch at a time (full layout)."""
    from compiler.partitions import positions
    from compiler.stages.base import TASK_SCHEMA
    from compiler.stages.sources import iter_sources

    store, loaded = services.store, services.loaded
    size = settings.partition_rows or SOURCE_BATCH_ROWS
    _, size, done = outputs.begin_stage(store, step.fingerprint, layout="full", parent=None, partition_rows=size)
    batches = 0
    for i, frame in enumerate(iter_sources(loaded.recipe, loaded.base_dir, size)):
        batches += 1
        if i not in done:
            outputs.commit_partition(store, step.fingerprint, i, frame.with_columns(positions(i, frame.height)),
                                     None, rows_in=frame.height, seconds=0.0, columns=list(frame.columns))
    if batches == 0 and 0 not in done:
        empty = pl.DataFrame(schema=TASK_SCHEMA)
        outputs.commit_partition(store, step.fingerprint, 0, empty.with_columns(positions(0, 0)), None,
                                 rows_in=0, seconds=0.0, columns=list(empty.columns))
    return "full"


def _run_step(step: Step, parent: pl.DataFrame, services: Services, tasks_fp: str,
              plan: Plan | None = None) -> StageOutput:
    """One partition of a stage: its output and rejections (LLM failures for now raise)."""
    assert step.cls is not None and step.params is not None
    stage = step.cls(step.params)
    ctx = StageContext(step, services, tasks_fp, plan)
    out = stage.run(parent, ctx)
    ctx.check_failures()
    return out


def _params_json(step: Step) -> dict[str, Any]:
    from compiler.fingerprint import canonical_params

    return canonical_params(step.params) if step.params is not None else {}


def _record_version(plan: Plan, store: Store) -> versions.Version:
    recipe = plan.loaded.recipe
    found = versions.find_by_fingerprint(store, recipe.name, plan.final.fingerprint)
    if found is not None:
        return found
    return versions.create_version(
        store, corpus=recipe.name, fingerprint=plan.final.fingerprint,
        stages=[{"name": s.name, "uses": s.uses, "fingerprint": s.fingerprint} for s in plan.steps],
        recipe=recipe.model_dump(mode="json", by_alias=True), recipe_yaml=plan.loaded.text,
        recipe_path=str(plan.loaded.path), rows=outputs.output_rows(store, plan.final.fingerprint))


def _discard_if_empty(store: Store, path: str, existed: bool) -> None:
    """A store file this compile created and that holds nothing worth keeping is removed, so a failed
    first compile leaves the disk as it was."""
    try:
        empty = store.con.execute(
            "SELECT (SELECT count(*) FROM stage_outputs) + (SELECT count(*) FROM llm_calls)"
        ).fetchall()[0][0] == 0
        store.close()
    except Exception:
        return
    if not existed and empty:
        for p in (path, path + ".wal"):
            try:
                os.remove(p)
            except FileNotFoundError:
                pass
