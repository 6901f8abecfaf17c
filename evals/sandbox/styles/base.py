"""Helpers shared by the parent-side style modules."""

from __future__ import annotations


def cases_of_kind(spec, kind: str) -> list:
    """The spec's cases, all of which must be of ``kind`` for this style."""
    wrong = [c.kind for c in spec.cases if c.kind != kind]
    if wrong:
        raise ValueError(f"style {spec.style!r} takes {kind!r} cases, got {wrong[0]!r}")
    return list(spec.cases)
