"""The ``openai`` backend: any OpenAI-compatible endpoint (OpenAI, ``vllm serve``, llama.cpp server).

Each request goes through the real ``AsyncOpenAI`` client (request building, auth, error mapping)
on the lean aiohttp transport. Chat requests (``messages``) use ``/chat/completions``, raw prompts
``/completions``. Bodies are built here as plain dicts and responses read as plain JSON: the typed
``create()`` helpers spend most of their CPU validating what we already know is well formed, and at
hundreds of calls per second that CPU is the throughput limit; the body goes as ready JSON bytes
(the SDK deep-copies a dict body twice per request), to an absolute URL. The SDK's own retries are off; the
client retries what this module raises as :class:`RetryableError`, so every attempt is counted.
"""

from __future__ import annotations

import asyncio
import email.utils
import itertools
import json
import os
import time
import uuid
from typing import TYPE_CHECKING, Any

import httpx2
import openai

from compiler.llm import logprobs
from compiler.llm.backend import FatalError, RetryableError
from compiler.llm.transport import lean_openai_client
from compiler.llm.types import Completion, LLMRequest, Usage

if TYPE_CHECKING:
    from compiler.recipe.schema import ModelConfig

RETRYABLE_STATUS = {408, 409, 425, 429}


class OpenAIBackend:
    """A concurrent backend over ``AsyncOpenAI``. The HTTP client is created per event loop (the
    LLM client runs one loop per ``generate`` call) and closed by :meth:`aclose`."""

    kind = "openai"
    concurrent = True

    def __init__(self, config: "ModelConfig"):
        self.config = config
        self.model = config.model
        self.revision = config.revision
        self.base_url = config.base_url
        self.api_key = os.environ.get(config.api_key_env) or ("sk-local" if config.base_url else None)
        if self.api_key is None:
            from compiler.errors import BackendError
            raise BackendError(f"openai backend: set ${config.api_key_env} (or base_url for a local server)")
        self._client: openai.AsyncOpenAI | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._urls: dict[str, str] = {}
        # our own request ids: the SDK would draw a uuid4 from os.urandom for each (0.1 ms here)
        prefix = f"distillc-{uuid.uuid4().hex[:16]}-"
        self._request_ids = (prefix + str(i) for i in itertools.count())

    def client(self) -> openai.AsyncOpenAI:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client = lean_openai_client(base_url=self.base_url, api_key=self.api_key,
                                              timeout_s=self.config.timeout_s,
                                              limit=max(self.config.max_concurrency, 8))
            self._loop = loop
            root = str(self._client.base_url).rstrip("/")
            self._urls = {"chat": root + "/chat/completions", "text": root + "/completions"}
        return self._client

    def body(self, req: LLMRequest) -> dict[str, Any]:
        """The JSON body for one request (also the line format of the Batch API)."""
        body: dict[str, Any] = {"model": self.model, "temperature": req.temperature, "top_p": req.top_p,
                                "max_tokens": req.max_tokens}
        if req.messages is not None:
            body["messages"] = req.message_dicts()
        else:
            body["prompt"] = req.prompt
        if req.stop:
            body["stop"] = list(req.stop)
        if req.seed is not None:
            body["seed"] = req.seed
        if req.top_logprobs:
            body.update({"logprobs": True, "top_logprobs": req.top_logprobs} if req.messages is not None
                        else {"logprobs": req.top_logprobs})
        return body

    @staticmethod
    def path(req: LLMRequest) -> str:
        return "/v1/chat/completions" if req.messages is not None else "/v1/completions"

    async def acomplete(self, req: LLMRequest) -> Completion:
        client = self.client()   # absolute URLs: the SDK skips re-parsing and merging the base URL
        url = self._urls["chat" if req.messages is not None else "text"]
        try:
            raw = await client.post(url, content=json.dumps(self.body(req)).encode(), cast_to=httpx2.Response,
                                    options={"idempotency_key": next(self._request_ids)})
        except openai.APIStatusError as exc:
            raise _status_error(exc) from None
        except openai.APITimeoutError as exc:
            raise RetryableError("timeout", detail=f"no answer within {self.config.timeout_s:g}s") from exc
        except openai.APIConnectionError as exc:
            raise RetryableError("connection", detail=str(exc.__cause__ or exc)) from exc
        return parse_completion(raw.content, chat=req.messages is not None)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
        self._client = self._loop = None

    def close(self) -> None:
        self._client = self._loop = None


def parse_completion(content: bytes | dict[str, Any], *, chat: bool) -> Completion:
    """A completion from a response body; malformed or empty answers are retryable failures."""
    try:
        data = json.loads(content) if isinstance(content, (bytes, str)) else content
        choice = data["choices"][0]
        text = choice["message"].get("content") if chat else choice.get("text")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise RetryableError("bad_response", detail=f"{type(exc).__name__}: {exc}") from None
    if text is None:
        raise FatalError("no_content", detail=f"finish_reason={choice.get('finish_reason')}")
    return Completion(text=text, finish_reason=choice.get("finish_reason"), usage=parse_usage(data.get("usage")),
                      logprobs=logprobs.parse(choice, chat=chat))


def parse_usage(u: dict[str, Any] | None) -> Usage:
    if not u:
        return Usage()
    prompt_details = u.get("prompt_tokens_details") or {}
    completion_details = u.get("completion_tokens_details") or {}
    return Usage(prompt_tokens=int(u.get("prompt_tokens") or 0),
                 completion_tokens=int(u.get("completion_tokens") or 0),
                 cached_tokens=int(prompt_details.get("cached_tokens") or 0),
                 reasoning_tokens=int(completion_details.get("reasoning_tokens") or 0))


def _status_error(exc: openai.APIStatusError) -> Exception:
    status = exc.status_code
    detail = _short(exc)
    if status == 429:
        return RetryableError("rate_limited", retry_after=retry_after(exc.response.headers),
                              overload=True, detail=detail)
    if status >= 500 or status in RETRYABLE_STATUS:
        return RetryableError(f"http_{status}", retry_after=retry_after(exc.response.headers), detail=detail)
    return FatalError(f"http_{status}", detail=detail)


def _short(exc: openai.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    message = body.get("message") or (body.get("error") or {}).get("message") if body else None
    return str(message or exc.message)[:300]


def retry_after(headers: Any) -> float | None:
    """Seconds from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date), if present."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000.0
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None
