"""Stage registry. Importing this package registers every stage; add new stage modules to
``_MODULES``."""

from __future__ import annotations

import importlib

from compiler.stages.base import REGISTRY, Stage, StageOutput, register

_MODULES = (
    "generate",
    "extract",
    "execute",
    "filters",
    "format",
    "dedup",
    "decontaminate",
    "persd_tests",
    "persd_attempt",
    "persd_refine",
    "persd_parse",
    "persd_emit",
    "persd_rounds",
)


def load_all() -> dict[str, type[Stage]]:
    for name in _MODULES:
        importlib.import_module(f"compiler.stages.{name}")
    return REGISTRY


__all__ = ["REGISTRY", "Stage", "StageOutput", "register", "load_all"]
