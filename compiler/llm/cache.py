"""The raw response cache (DESIGN idea 3): immutable entries keyed by the full request.

Lookups are done in bulk, one query per ``generate`` call, because a stage asks for thousands of keys
at once. Entries are written by :mod:`compiler.llm.recorder` in the same transaction as the ledger
row of the call that produced them.
"""

from __future__ import annotations

import json
from typing import Any

import duckdb

from compiler.llm import logprobs
from compiler.llm.types import Completion, Usage


def response_json(c: Completion) -> str:
    """The cached response; ``logprobs`` only when the answer has them (older entries never do)."""
    u = c.usage
    data: dict[str, Any] = {"text": c.text, "finish_reason": c.finish_reason,
                            "usage": {"prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens,
                                      "cached_tokens": u.cached_tokens, "reasoning_tokens": u.reasoning_tokens}}
    if c.logprobs is not None:
        data["logprobs"] = logprobs.to_json(c.logprobs)
    return json.dumps(data, ensure_ascii=False)


def completion_from_json(raw: str | dict[str, Any]) -> Completion:
    data = json.loads(raw) if isinstance(raw, str) else raw
    return Completion(text=data["text"], finish_reason=data.get("finish_reason"),
                      usage=Usage(**(data.get("usage") or {})), logprobs=logprobs.from_json(data.get("logprobs")))


def lookup(con: duckdb.DuckDBPyConnection, keys: list[str]) -> dict[str, Completion]:
    """The cached completions among ``keys`` (missing keys are absent from the result)."""
    if not keys:
        return {}
    rows = con.execute(
        "SELECT c.key, c.response FROM llm_cache c JOIN (SELECT unnest(?::VARCHAR[]) AS key) k "
        "ON c.key = k.key", [list(set(keys))]).fetchall()
    return {key: completion_from_json(resp) for key, resp in rows}


def request_json(payload: dict[str, Any]) -> str:
    return json.dumps(payload, sort_keys=True, ensure_ascii=False)
