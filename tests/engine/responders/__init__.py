"""Method-specific answers of the scripted model that compiles every shipped recipe
(``tests/engine/test_shipped_recipes.py``). Each module here defines ``respond(body, tasks) -> str |
None``: the answer to an OpenAI request body when it recognises the request (a method's own prompt),
else None. ``tasks`` are the recipe's task rows. Modules are discovered; add one per method."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any, Callable

Responder = Callable[[dict[str, Any], list[dict[str, Any]]], "str | None"]


def responders() -> list[Responder]:
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        found.append(importlib.import_module(f"{__name__}.{info.name}").respond)
    return found
