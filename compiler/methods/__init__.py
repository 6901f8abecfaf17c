"""Method packages: one folder per distillation method (``persd``; AMR-Evol, SODA and AKD follow the
same shape). A method package holds its stages (registered like every stage, discovered by
:func:`compiler.stages.load_all`), its prompt templates, its record builders and its funnel, and
describes itself with a module-level ``METHOD`` (:class:`Method`) in its ``__init__``.

The shared pipeline (sources, teacher answers, extraction, execution, filters, dedup,
decontamination, formatting) lives in :mod:`compiler.stages` and never imports a method.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from compiler.store.db import Store
    from compiler.store.versions import Version

Funnel = Callable[["Store", "Version"], "dict[str, Any] | None"]


@dataclass(frozen=True)
class Method:
    """What ``distillc show`` and ``export`` need to know about a method.

    ``funnel(store, version)`` returns the method's own counts for a version built with it (None
    for other versions); ``render(funnel)`` turns them into the lines ``show`` prints;
    ``default_variants`` are the training sets ``export`` prefers as its top-level dataset, best first."""

    name: str
    title: str
    funnel: Funnel
    render: Callable[[dict[str, Any]], list[str]]
    default_variants: tuple[str, ...] = ()
    summary: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def all_methods() -> list[Method]:
    """Every method package's ``METHOD``, in package-name order."""
    import compiler.methods as pkg

    found = []
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        if info.ispkg:
            module = importlib.import_module(f"{pkg.__name__}.{info.name}")
            method = getattr(module, "METHOD", None)
            if not isinstance(method, Method):
                raise RuntimeError(f"method package {info.name!r} defines no METHOD")
            found.append(method)
    return found


def preferred_variants() -> tuple[str, ...]:
    """Default-variant order for exports: each method's preferred variants, then StanD."""
    out: list[str] = []
    for method in all_methods():
        out += [v for v in method.default_variants if v != "StanD" and v not in out]
    return (*out, "StanD")


def funnels(store: "Store", version: "Version") -> dict[str, dict[str, Any]]:
    """The funnel of every method this version was built with, by method name."""
    out = {}
    for method in all_methods():
        counts = method.funnel(store, version)
        if counts is not None:
            out[method.name] = counts
    return out
