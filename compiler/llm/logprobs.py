"""Token log-probabilities returned by OpenAI-compatible servers, in one shape for both endpoints.

A request with ``top_logprobs = k`` asks for them (``/chat/completions``: ``logprobs: true,
top_logprobs: k``; ``/completions``: ``logprobs: k``). The two endpoints answer differently:

- chat: ``choices[0].logprobs.content`` = ``[{token, logprob, bytes, top_logprobs: [{token, logprob,
  bytes}, ...]}, ...]``;
- text: ``choices[0].logprobs`` = ``{tokens: [...], token_logprobs: [...], top_logprobs: [{token:
  logprob, ...}, ...]}`` (vLLM, and OpenAI's legacy endpoint).

Both become :data:`~compiler.llm.types.TokenLogprobs`: per generated token, its text, its
log-probability and its alternatives best first. In the cache's response JSON they are nested lists,
``[[token, logprob, [[alt, logprob], ...]], ...]``. A missing or infinite log-probability is stored
as ``LOG_ZERO`` (JSON has no infinity; vLLM uses the same stand-in).
"""

from __future__ import annotations

import math
from typing import Any

from compiler.llm.types import TokenLogprob, TokenLogprobs

LOG_ZERO = -9999.0


def _finite(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return LOG_ZERO
    return number if math.isfinite(number) else LOG_ZERO


def _chat(content: list[dict[str, Any]]) -> TokenLogprobs:
    out: list[TokenLogprob] = []
    for item in content:
        alts = tuple((str(a["token"]), _finite(a.get("logprob"))) for a in item.get("top_logprobs") or ())
        out.append((str(item["token"]), _finite(item.get("logprob")), alts))
    return tuple(out)


def _text(data: dict[str, Any]) -> TokenLogprobs:
    tokens = data.get("tokens") or []
    values = data.get("token_logprobs") or [None] * len(tokens)
    tops = data.get("top_logprobs") or [None] * len(tokens)
    out: list[TokenLogprob] = []
    for token, value, top in zip(tokens, values, tops):
        alts = sorted(((str(t), _finite(v)) for t, v in (top or {}).items()), key=lambda a: -a[1])
        out.append((str(token), _finite(value), tuple(alts)))
    return tuple(out)


def parse(choice: dict[str, Any], *, chat: bool) -> TokenLogprobs | None:
    """The log-probabilities of one response choice, or None when the server sent none."""
    data = choice.get("logprobs")
    if not data:
        return None
    if chat:
        content = data.get("content")
        return _chat(content) if content else None
    return _text(data) if data.get("tokens") else None


def to_json(logprobs: TokenLogprobs) -> list[Any]:
    return [[token, value, [list(a) for a in alts]] for token, value, alts in logprobs]


def from_json(raw: list[Any] | None) -> TokenLogprobs | None:
    if raw is None:
        return None
    return tuple((str(t), float(v), tuple((str(a), float(b)) for a, b in alts)) for t, v, alts in raw)
