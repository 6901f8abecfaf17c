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
        return chat_text(value) or json.dumps(value, indent=2, default=str, ensure_ascii=False)
    return str(value)


def _indented_json(text: str) -> str | None:
    """A string holding a JSON object or array, indented (a chat as its turns); None for any other
    string."""
    stripped = text.strip()
    if not stripped or stripped[0] not in "[{":
        return None
    try:
        value = json.loads(stripped)
    except ValueError:
        return None
    return chat_text(value) or json.dumps(value, indent=2, ensure_ascii=False)


def chat_text(value: Any) -> str | None:
    """A list of ``{role, content}`` messages as ``[role]`` headed turns; None for anything else."""
    if not isinstance(value, list) or not value:
        return None
    if not all(isinstance(m, dict) and set(m) >= {"role", "content"} and isinstance(m["content"], str) for m in value):
        return None
    return "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in value)
