"""Recipe → plan: the ordered steps (sources first, then each stage) with their fingerprints.

Planning reads no dataset and touches no store: local source files are hashed, Hub sources are
identified by id/config/split/revision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from compiler.errors import SourceError
from compiler.fingerprint import fingerprint, stage_fingerprint
from compiler.recipe.loader import LoadedRecipe
from compiler.stages import load_all
from compiler.stages.base import Stage

SOURCES_STAGE = "sources"


@dataclass(frozen=True)
class Step:
    index: int
    name: str                      # unique in the recipe
    uses: str                      # registered stage ("sources" for step 0)
    version: int
    fingerprint: str
    parent: str | None
    params: BaseModel | None       # None for the sources step
    cls: type[Stage] | None        # None for the sources step

    @property
    def roles(self) -> tuple[str, ...]:
        return self.cls.roles if self.cls else ()


@dataclass(frozen=True)
class Plan:
    loaded: LoadedRecipe
    steps: tuple[Step, ...]

    @property
    def final(self) -> Step:
        return self.steps[-1]

    def step(self, name: str) -> Step:
        return next(s for s in self.steps if s.name == name)


def sandbox_identity() -> dict[str, Any]:
    """What about the sandbox determines execution results (enters fingerprints of stages that run
    code): its semantics version and the runtime it judges with (Python and numpy versions). Read
    from the sandbox itself, never defaulted: a missing identity is an error."""
    from evals.sandbox.cache import SEMANTICS_VERSION, runtime_version

    return {"semantics": SEMANTICS_VERSION, "runtime": runtime_version("python")}


def stage_identity(recipe: Any, cls: type[Stage], params: BaseModel) -> dict[str, Any]:
    """What besides its params and parent determines a stage's output: the identity of each model
    it calls, the recipe's seed when it samples (and its params fix no seed of their own), the
    sandbox's identity when it runs programs, and the embedder's when it embeds text."""
    extra: dict[str, Any] = {}
    for role in cls.roles:
        config = recipe.model_for(role)
        if config is None:
            raise RuntimeError(f"stage {cls.name!r} calls the {role} model, which the recipe lacks")
        extra[role] = config.identity()
    if cls.samples(params) and getattr(params, "seed", None) is None:
        extra["seed"] = recipe.seed
    if cls.sandbox:
        extra["sandbox"] = sandbox_identity()
    if cls.embeds_for(params):
        extra["embedder"] = recipe.embedder.identity()
    return extra


def file_identity(loaded: LoadedRecipe, i: int, cls: type[Stage], params: BaseModel) -> dict[str, str]:
    """SHA-256 of each file the params of stage ``i`` name (:meth:`Stage.files`), by param."""
    import hashlib

    from compiler.stages.sources import resolve_path

    out = {}
    for param, path in cls.files(params):
        local = resolve_path(path, loaded.base_dir)
        if not local.is_file():
            raise loaded.error(f"{path}: no such file (resolved to {local})", ("stages", i, "with", param))
        out[param] = hashlib.sha256(local.read_bytes()).hexdigest()
    return out


def _identity(loaded: LoadedRecipe, i: int) -> dict[str, Any]:
    """A source's content identity; a problem with it (a missing file) is located in the recipe."""
    from compiler.stages.sources import source_identity

    cfg = loaded.recipe.sources[i]
    try:
        return source_identity(cfg, loaded.base_dir)
    except SourceError as exc:
        key = "path" if cfg.path else "split" if cfg.split else None
        raise loaded.error(str(exc), ("sources", i, key) if key else ("sources", i)) from None


def make_plan(loaded: LoadedRecipe) -> Plan:

    recipe = loaded.recipe
    sources = [{"config": s.model_dump(mode="json", exclude_defaults=True),
                "content": _identity(loaded, i)} for i, s in enumerate(recipe.sources)]
    from compiler.stages.sources import SOURCES_VERSION

    fp = fingerprint({"stage": f"{SOURCES_STAGE}@{SOURCES_VERSION}", "sources": sources})
    steps = [Step(0, SOURCES_STAGE, SOURCES_STAGE, SOURCES_VERSION, fp, None, None, None)]
    registry = load_all()
    for i, (cfg, params) in enumerate(zip(recipe.stages, loaded.stage_params), start=1):
        cls = registry[cfg.uses]
        extra = stage_identity(recipe, cls, params)
        files = file_identity(loaded, i - 1, cls, params)
        if files:
            extra["files"] = files
        fp = stage_fingerprint(parents=[steps[-1].fingerprint], uses=cfg.uses, version=cls.version,
                               params=params, extra=extra or None)
        steps.append(Step(i, cfg.label, cfg.uses, cls.version, fp, steps[-1].fingerprint, params, cls))
    return Plan(loaded, tuple(steps))
