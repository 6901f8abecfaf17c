"""The backend interface every LLM backend implements, its typed errors, and ``make_backend``.

Two shapes, one protocol. Concurrent backends (``openai``: any OpenAI-compatible HTTP endpoint)
implement ``async acomplete(req)`` for one request and let the client run many at once under an
adaptive concurrency limit, retrying what they raise as :class:`RetryableError`. In-process backends
(``transformers``, ``vllm``) implement ``complete_batch(reqs)`` and batch on their own. Both expose
``kind``, ``model`` and ``revision`` (the identity that enters cache keys) and ``close()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

from compiler.llm.types import Completion, LLMRequest

if TYPE_CHECKING:
    from compiler.recipe.schema import ModelConfig


class RetryableError(Exception):
    """A failure worth another attempt: rate limit, 5xx, timeout, dropped connection.

    ``overload`` marks signals that the server is saturated (429), which shrink the concurrency
    limit harder than isolated errors; ``retry_after`` is the server's own hint in seconds."""

    def __init__(self, reason: str, *, retry_after: float | None = None, overload: bool = False,
                 detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.retry_after, self.overload, self.detail = reason, retry_after, overload, detail


class FatalError(Exception):
    """A failure that another attempt will not fix (bad request, auth, unknown model)."""

    def __init__(self, reason: str, *, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail = reason, detail


@runtime_checkable
class Backend(Protocol):
    kind: str
    model: str
    revision: str | None
    concurrent: bool

    def close(self) -> None: ...


class ConcurrentBackend(Backend, Protocol):
    async def acomplete(self, req: LLMRequest) -> Completion: ...

    async def aclose(self) -> None: ...


class InProcessBackend(Backend, Protocol):
    def complete_batch(self, reqs: list[LLMRequest]) -> list[Completion]: ...


def make_backend(config: "ModelConfig") -> Backend:
    """The backend named by ``config.backend``; heavy ones are imported only when asked for."""
    if config.backend == "openai":
        from compiler.llm.openai_backend import OpenAIBackend
        return OpenAIBackend(config)
    if config.backend == "transformers":
        from compiler.llm.transformers_backend import TransformersBackend
        return TransformersBackend(config)
    if config.backend == "vllm":
        from compiler.llm.vllm_backend import VLLMBackend
        return VLLMBackend(config)
    raise ValueError(f"unknown backend {config.backend!r}")
