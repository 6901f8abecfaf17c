"""How the viewer shows a stored value: text as it is, JSON text and structures indented, the rest
as Python prints it. Escaping is the templates' (Jinja2 autoescaping), never done here."""

from __future__ import annotations

import json
from typing import Any


def value_text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return _indented_json(value) or value
    if isinstance(value, (list, dict, tuple)):
        return json.dumps(value, indent=2, default=str, ensure_ascii=False)
    return str(value)


def _indented_json(text: str) -> str | None:
    """A string holding a JSON object or array, indented; None for any other string."""
    stripped = text.strip()
    if not stripped or stripped[0] not in "[{":
        return None
    try:
        return json.dumps(json.loads(stripped), indent=2, ensure_ascii=False)
    except ValueError:
        return None
