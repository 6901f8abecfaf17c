"""Stage registry. Stages are discovered: every module of the shared pipeline (this package) and of
every method package (``compiler/methods/<method>/``) is imported, and each ``@register``-ed class
joins the registry. Adding a stage is adding a module; no list is kept by hand."""

from __future__ import annotations

import importlib
import pkgutil

from compiler.stages.base import REGISTRY, Stage, StageOutput, register

_PACKAGES = ("compiler.stages", "compiler.methods")
_loaded = False


def _import_tree(package: str) -> None:
    pkg = importlib.import_module(package)
    for info in pkgutil.walk_packages(pkg.__path__, prefix=f"{package}."):
        importlib.import_module(info.name)


def load_all() -> dict[str, type[Stage]]:
    """Every registered stage by name (imports the stage packages once)."""
    global _loaded
    if not _loaded:
        for package in _PACKAGES:
            _import_tree(package)
        _loaded = True
    return REGISTRY


__all__ = ["REGISTRY", "Stage", "StageOutput", "register", "load_all"]
