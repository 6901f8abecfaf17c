"""Fixtures for the LLM layer tests: a real DuckDB store and clients pointed at loopback servers."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from compiler.llm.client import LLMClient
from compiler.llm.concurrency import RetryPolicy
from compiler.llm.types import LLMRequest
from compiler.recipe.schema import ModelConfig
from compiler.store.db import Store

FAST_RETRY = RetryPolicy(base_s=0.02, cap_s=0.2)


@pytest.fixture
def store(tmp_path: Any) -> Any:
    with Store.open(tmp_path / "store.duckdb") as s:
        yield s


@pytest.fixture
def make_client(store: Store) -> Callable[..., LLMClient]:
    """``make_client(server, **model_config)``: an openai-backend client on ``server``."""
    clients: list[LLMClient] = []

    def make(server: Any, *, budget: Any = None, use_store: bool = True, **fields: Any) -> LLMClient:
        fields.setdefault("model", "gpt-4o-mini")
        fields.setdefault("timeout_s", 2.0)
        config = ModelConfig(backend="openai", base_url=server.url, **fields)
        client = LLMClient(config, store=store if use_store else None, role="teacher", budget=budget,
                           retry=FAST_RETRY, batch_poll_s=0.01)
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.close()


def chat_requests(n: int, *, prefix: str = "task", **kw: Any) -> list[LLMRequest]:
    return [LLMRequest.chat([{"role": "system", "content": "You write Python."},
                             {"role": "user", "content": f"{prefix} {i}: write a function"}],
                            served_rows=(f"{prefix}-row{i}",), **kw) for i in range(n)]
