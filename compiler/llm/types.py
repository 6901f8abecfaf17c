"""Requests and results of LLM calls, shared by every backend, the cache and the ledger.

A request's cache key is a hash of everything that determines the answer: backend, model (and
revision), the prompt or messages, every sampling parameter, the seed and the sample index (so k
samples of one prompt are k cache entries), and the number of top log-probabilities asked for, when
any (a request that asks for none has the key it always had). Base URLs, keys, timeouts and
concurrency are not part of it, and neither are the rows a request serves.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant"]
# Per generated token: (token text, its log-probability, ((alternative, log-probability), ...) best first).
TokenLogprob = tuple[str, float, tuple[tuple[str, float], ...]]
TokenLogprobs = tuple[TokenLogprob, ...]
CallStatus = Literal["pending", "retrying", "ok", "retried", "failed", "cache_hit", "interrupted"]


@dataclass(frozen=True)
class LLMRequest:
    """One completion to produce. Exactly one of ``messages`` (chat) or ``prompt`` (raw text
    continuation, for base students) is set."""

    messages: tuple[tuple[str, str], ...] | None = None  # ((role, content), ...)
    prompt: str | None = None
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 512
    stop: tuple[str, ...] = ()
    seed: int | None = None
    sample_index: int = 0
    top_logprobs: int = 0   # alternatives per generated token to return with their log-probabilities
    served_rows: tuple[str, ...] = field(default=(), compare=False)  # lineage, not part of the key

    def __post_init__(self) -> None:
        if (self.messages is None) == (self.prompt is None):
            raise ValueError("an LLMRequest needs exactly one of messages or prompt")

    @staticmethod
    def chat(messages: list[dict[str, str]] | list[tuple[str, str]], **kw: Any) -> "LLMRequest":
        pairs = tuple((m["role"], m["content"]) if isinstance(m, dict) else (m[0], m[1]) for m in messages)
        return LLMRequest(messages=pairs, **kw)

    def message_dicts(self) -> list[dict[str, str]]:
        return [{"role": r, "content": c} for r, c in (self.messages or ())]

    def key_payload(self, backend: str, model: str, revision: str | None = None) -> dict[str, Any]:
        payload = {
            "backend": backend,
            "model": model,
            "revision": revision,
            "messages": [list(m) for m in self.messages] if self.messages is not None else None,
            "prompt": self.prompt,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "stop": list(self.stop),
            "seed": self.seed,
            "sample_index": self.sample_index,
        }
        if self.top_logprobs:
            payload["top_logprobs"] = self.top_logprobs
        return payload

    def key_json(self, backend: str, model: str, revision: str | None = None) -> str:
        """The canonical JSON the cache key hashes (stored with the cache entry)."""
        return json.dumps(self.key_payload(backend, model, revision), sort_keys=True,
                          separators=(",", ":"), ensure_ascii=False)

    def cache_key(self, backend: str, model: str, revision: str | None = None) -> str:
        return key_of(self.key_json(backend, model, revision))


def key_of(key_json: str) -> str:
    """The cache key of a canonical request JSON (see :meth:`LLMRequest.key_json`)."""
    return hashlib.sha256(key_json.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass(frozen=True)
class LLMResult:
    """The outcome of one request. ``ok`` False means it failed for good: ``text`` is None and
    ``error`` says why; callers turn it into a failure/rejection row, never a null in the corpus."""

    ok: bool
    text: str | None
    finish_reason: str | None = None
    usage: Usage = Usage()
    status: CallStatus = "ok"
    usd: float = 0.0
    latency_s: float = 0.0
    attempts: int = 1
    error: str | None = None
    call_id: str | None = None
    cache_key: str | None = None
    transient: bool = False
    logprobs: TokenLogprobs | None = None   # when the request asked for top_logprobs and the server sent them   # failed for now (connection, timeout, rate limit, 5xx): worth retrying later


# generation_error: an in-process batch that kept raising (out of memory, say) down to a single request
TRANSIENT_REASONS = frozenset({"timeout", "connection", "rate_limited", "bad_response", "http_429",
                               "generation_error"})


def is_transient(reason: str) -> bool:
    """Whether a request that failed for this reason may succeed on a later run."""
    return reason in TRANSIENT_REASONS or (reason.startswith("http_5") and len(reason) == 8)


@dataclass(frozen=True)
class Completion:
    """What a backend returns for one request (before caching and the ledger)."""

    text: str
    finish_reason: str | None = None
    usage: Usage = Usage()
    logprobs: TokenLogprobs | None = None
