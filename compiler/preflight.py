"""Checks a compile runs after planning and before it opens the store for writing, so that input it
can refuse up front (an embedder that cannot be found, a module database too small for a retrieval)
stops it with one line and the store exactly as it was.

The recipe's embedder is checked when a stage embeds (its files are found, nothing is loaded); then
each stage's :meth:`~compiler.stages.base.Stage.preflight` runs with a :class:`Preflight`, which
reads the existing store, if any, read-only.
"""

from __future__ import annotations

from pathlib import Path

from compiler.errors import StoreError
from compiler.plan import Plan, Step
from compiler.store import outputs
from compiler.store.db import Store


class Preflight:
    """What a stage's preflight may look at: the plan, its step, and the existing store (read-only)."""

    def __init__(self, plan: Plan, store_path: str):
        self.plan, self.store_path = plan, store_path
        self.step: Step = plan.steps[0]
        self._store: Store | None = None
        self._opened = False
        self._done: set[str] = set()

    def store(self) -> Store | None:
        """The existing store, read-only; None when there is none yet (or it needs migrating first)."""
        if not self._opened:
            self._opened = True
            if Path(self.store_path).exists():
                try:
                    self._store = Store.open_readonly(self.store_path)
                except StoreError as exc:
                    if "in use" in str(exc) or "newer" in str(exc):
                        raise
                    self._store = None
                if self._store is not None:
                    self._done = outputs.cached_fingerprints(self._store, [s.fingerprint for s in self.plan.steps])
        return self._store

    def cached(self, step: Step) -> bool:
        self.store()
        return step.fingerprint in self._done

    def pending_before(self, uses: set[str]) -> bool:
        """Whether a stage of one of these kinds runs (is not stored yet) before this step."""
        return any(s.uses in uses and not self.cached(s) for s in self.plan.steps[1:self.step.index])

    def label(self) -> str:
        s = self.step
        return f"stage {s.name!r}" + (f" ({s.uses})" if s.uses != s.name else "")

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def run_preflight(plan: Plan, store_path: str) -> None:
    from compiler.embed import EmbedderError, check

    steps = [s for s in plan.steps if s.cls is not None]
    if any(s.cls.embeds_for(s.params) for s in steps):
        try:
            check(plan.loaded.recipe.embedder, plan.loaded.base_dir)
        except EmbedderError as exc:
            raise plan.loaded.error(str(exc), ("embedder", "model")) from None
    checker = Preflight(plan, store_path)
    try:
        for step in steps:
            checker.step = step
            step.cls.preflight(step.params, checker)
    finally:
        checker.close()
