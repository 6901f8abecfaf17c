"""A user's own library of functions, one JSON object per line::

    {"name": "is_prime", "code": "def is_prime(n: int) -> bool:\\n    ...", "tests": ["assert is_prime(7)"]}

``name`` and ``code`` are required (the code must define the function ``name``); ``tests`` (a list of
statements, or one string of them) and ``docstring`` (else the function's own) are optional. The whole
file is read and checked before anything happens: a bad row is one error naming the file and line.
Modules with tests are run in the sandbox: those that pass are ``verified``, those that fail are
reported and not added; modules without tests are added unverified."""

from __future__ import annotations

import ast
import json
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Sequence

from compiler.errors import DistillcError
from compiler.moduledb.records import Module, module_from_code, verification_job
from evals import codeinfo

KEYS = ("name", "code", "tests", "docstring")


class LibraryError(DistillcError):
    """A module library file that cannot be imported."""


def _tests(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        tree = codeinfo.parse(value)
        if tree is None:
            raise LibraryError(f"{where}: `tests` is not valid Python")
        return tuple(ast.unparse(node) for node in tree.body)
    if isinstance(value, list) and all(isinstance(t, str) and t.strip() for t in value):
        return tuple(t.strip() for t in value)
    raise LibraryError(f"{where}: `tests` must be a list of statements or one string of them")


def _module(row: Any, where: str, source: str) -> Module:
    if not isinstance(row, dict):
        raise LibraryError(f"{where}: expected a JSON object with `name` and `code`")
    unknown = sorted(set(row) - set(KEYS))
    if unknown:
        raise LibraryError(f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(KEYS)})")
    for key in ("name", "code"):
        if not isinstance(row.get(key), str) or not row[key].strip():
            raise LibraryError(f"{where}: row has no `{key}`")
    doc = row.get("docstring")
    if doc is not None and not isinstance(doc, str):
        raise LibraryError(f"{where}: `docstring` must be a string")
    module = module_from_code(row["name"], row["code"], tests=_tests(row.get("tests"), where), docstring=doc,
                              origin="imported", source=source)
    if module is None:
        raise LibraryError(f"{where}: `code` does not parse or does not define the function {row['name']!r}")
    return module


def read_library(path: Path, shown: str | None = None) -> list[Module]:
    """Every module of the file, checked; LibraryError at the first bad row."""
    shown = shown or str(path)
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise LibraryError(f"{shown}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LibraryError(f"{shown}: cannot read ({exc})") from None
    modules = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise LibraryError(f"{shown}:{n}: not JSON ({exc.msg})") from None
        modules.append(_module(row, f"{shown}:{n}", f"{Path(path).name}:{n}"))
    if not modules:
        raise LibraryError(f"{shown}: holds no modules")
    return modules


def verify(modules: Sequence[Module], execute: Callable[[list], list],
           cpu_seconds: float = 5.0) -> tuple[list[Module], list[tuple[Module, str]]]:
    """(modules to add, (module, why) for those whose tests failed). ``execute`` runs sandbox jobs."""
    tested = [m for m in modules if m.tests]
    results = dict(zip((m.module_id for m in tested), execute([verification_job(m, cpu_seconds) for m in tested])))
    kept, failed = [], []
    for m in modules:
        result = results.get(m.module_id)
        if result is None:
            kept.append(m)
        elif result.passed:
            kept.append(replace(m, verified=True))
        else:
            failed.append((m, f"{result.status.value}: {(result.feedback or '').splitlines()[0] if result.feedback else ''}"))
    return kept, failed
