"""A lean aiohttp transport for the ``openai`` client.

``AsyncOpenAI`` sends every request through an ``httpx2.AsyncClient``. With its default transport
(httpcore) a call costs 3-6 CPU ms here and with the SDK's own aiohttp adapter about 2 ms (both
including the typed ``create()``), which caps one process at a few hundred calls per second. This
transport keeps the SDK on the request path (request building, auth headers, status-to-exception
mapping) but hands the wire work to one pooled ``aiohttp.ClientSession`` and reads each body in one
piece instead of streaming it through per-chunk wrappers. Completions are small JSON bodies, so
nothing is lost by not streaming. ``bench/teacher_throughput.py`` measures all of these.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import httpx2

from openai import AsyncOpenAI, Omit


class AiohttpTransport(httpx2.AsyncBaseTransport):
    """An ``httpx2`` transport over one ``aiohttp`` connection pool of at most ``limit`` sockets."""

    def __init__(self, limit: int = 256):
        self._limit = limit
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=self._limit, ttl_dns_cache=300, keepalive_timeout=30)
        self._session = aiohttp.ClientSession(connector=connector, auto_decompress=True,
                                              skip_auto_headers=("User-Agent",))
        return self._session

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        session = self._session or self._open()
        try:
            headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
            async with session.request(request.method, str(request.url), headers=headers,
                                       data=(await request.aread()) or None, allow_redirects=False,
                                       timeout=_timeout(request)) as resp:
                body = await resp.read()
                return httpx2.Response(resp.status, headers=resp.raw_headers, content=body, request=request)
        except asyncio.TimeoutError as exc:
            raise httpx2.ReadTimeout(f"no answer in time: {exc}", request=request) from exc
        except aiohttp.ClientConnectorError as exc:
            raise httpx2.ConnectError(str(exc), request=request) from exc
        except aiohttp.ClientError as exc:
            raise httpx2.ReadError(f"{type(exc).__name__}: {exc}", request=request) from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


_TIMEOUTS: dict[tuple[Any, Any], aiohttp.ClientTimeout] = {}


def _timeout(request: httpx2.Request) -> aiohttp.ClientTimeout:
    """The request's read timeout as aiohttp's total (one object per distinct setting)."""
    t: dict[str, Any] = request.extensions.get("timeout", {})
    key = (t.get("read"), t.get("connect"))
    if key not in _TIMEOUTS:
        _TIMEOUTS[key] = aiohttp.ClientTimeout(total=key[0], sock_connect=key[1])
    return _TIMEOUTS[key]


class LeanHttpClient(httpx2.AsyncClient):
    """The ``http_client`` handed to ``AsyncOpenAI``: plain JSON requests skip httpx2's per-request
    merging of client defaults (base URL, cookies, query, headers the SDK already sets) and its
    auth/redirect machinery, and go straight to the transport. Anything else (file uploads of the
    Batch API, query parameters) takes the ordinary httpx2 path."""

    def build_request(self, method: str, url: Any, *, content: Any = None, headers: Any = None,
                      timeout: Any = httpx2.USE_CLIENT_DEFAULT, extensions: Any = None,
                      **other: Any) -> httpx2.Request:
        if any(v is not None for v in other.values()) or not isinstance(content, (bytes, type(None))):
            return super().build_request(method, url, content=content, headers=headers, timeout=timeout,
                                         extensions=extensions, **other)
        t = self.timeout if isinstance(timeout, httpx2._client.UseClientDefault) else httpx2.Timeout(timeout)
        return httpx2.Request(method, self._parsed(url), content=content, headers=headers,
                              extensions={**(extensions or {}), "timeout": t.as_dict()})

    def _parsed(self, url: Any) -> Any:
        """Parsed URLs by string: a teacher posts to the same one or two URLs all day."""
        if not isinstance(url, str):
            return url
        cache = self.__dict__.setdefault("_url_cache", {})
        if url not in cache:
            cache[url] = httpx2.URL(url)
        return cache[url]

    async def send(self, request: httpx2.Request, *, stream: bool = False, auth: Any = httpx2.USE_CLIENT_DEFAULT,
                   follow_redirects: Any = httpx2.USE_CLIENT_DEFAULT) -> httpx2.Response:
        if stream or request.stream is not None and not isinstance(request.stream, httpx2.ByteStream):
            return await super().send(request, stream=stream, auth=auth, follow_redirects=follow_redirects)
        return await self._transport.handle_async_request(request)


def lean_openai_client(*, base_url: str | None, api_key: str, timeout_s: float,
                       limit: int) -> AsyncOpenAI:
    """An ``AsyncOpenAI`` client on the lean transport with the SDK's own retries off (the caller
    retries, so that every attempt is counted and feeds the adaptive concurrency) and without the
    SDK's per-request platform telemetry headers (a third of its header work)."""
    http_client = LeanHttpClient(transport=AiohttpTransport(limit), timeout=timeout_s)
    client = AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=timeout_s,
                         http_client=http_client)
    return client.with_options(default_headers={name: Omit() for name in client.platform_headers()})
