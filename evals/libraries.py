"""Installed versions of the libraries an artifact depends on, recorded with every corpus version,
checkpoint and evaluation run."""

from __future__ import annotations

from importlib import metadata
from typing import Iterable


def installed_versions(names: Iterable[str]) -> dict[str, str]:
    """``{name: version}`` for each installed distribution among ``names`` (missing ones left out)."""
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found
