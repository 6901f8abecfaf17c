"""A loopback OpenAI-compatible server for tests and bench scripts.

It answers ``/v1/chat/completions``, ``/v1/completions``, ``/v1/models`` and the Files/Batch endpoints
the batch mode needs, on 127.0.0.1 with an OS-chosen port, from a background thread. Answers are
scripted (a callable, a list consumed in arrival order, or a dict keyed by the last user message);
latency, queueing (a fixed number of slots, so latency grows with concurrency) and faults (429 with
and without Retry-After, 500, hangs, dropped connections) are configurable. The server keeps its own
tally of what it answered so tests can compare the client's ledger with it.

Run standalone (for bench scripts that want the server in another process)::

    python -m tests.loopback --latency 0.2      # prints the base URL, serves until stdin closes
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import random
import re
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

from aiohttp import web

Answer = Callable[[dict[str, Any]], str] | list[str] | dict[str, str] | None
# (body, answer text, k) -> per token: (token, logprob, [(alternative, logprob), ...]); the tokens
# concatenate to the text.
Logprobs = Callable[[dict[str, Any], str, int], list[tuple[str, float, list[tuple[str, float]]]]]


@dataclass
class Faults:
    """Per-request fault probabilities (drawn in this order from one seeded generator)."""

    rate_429: float = 0.0             # 429 without Retry-After
    rate_429_retry_after: float = 0.0  # 429 with a Retry-After header
    retry_after_s: float = 0.2
    rate_500: float = 0.0
    rate_timeout: float = 0.0         # hang for hang_s (the client must time out)
    rate_drop: float = 0.0            # close the connection without answering
    rate_400: float = 0.0             # reject as a bad request (not retryable)
    rate_401: float = 0.0             # reject the API key (not retryable)
    hang_s: float = 3600.0


@dataclass
class Tally:
    """What the server saw and answered; token counts cover successful (200) answers only."""

    requests: int = 0
    answered: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    batch_items: int = 0
    batch_prompt_tokens: int = 0
    batch_completion_tokens: int = 0
    batches_created: int = 0
    embedding_inputs: int = 0         # texts embedded by /v1/embeddings
    statuses: Counter = field(default_factory=Counter)
    bodies: Counter = field(default_factory=Counter)  # sha256 of each answered request body
    max_in_flight: int = 0


def repaid(bodies: Counter, need: Counter) -> int:
    """Answers in ``bodies`` (a snapshot of ``Tally.bodies``) beyond the ``need`` of each body: how many
    distinct requests carry it (an uninterrupted run's ``Tally.bodies``; requests that differ only in
    their sample index send identical bodies). Each is an answer that was paid for a second time."""
    return sum(max(0, n - need[body]) for body, n in bodies.items())


def count_tokens(text: str) -> int:
    """The loopback tokenizer: one token per whitespace-separated word (deterministic, cheap)."""
    return len(text.split())


def prompt_tokens(body: dict[str, Any]) -> int:
    if "messages" in body:
        return sum(count_tokens(str(m.get("content", ""))) + 4 for m in body["messages"]) + 2
    return count_tokens(str(body.get("prompt", ""))) + 1


def default_answer(body: dict[str, Any]) -> str:
    """A deterministic answer that changes with every field of the request (temperature, seed, ...)."""
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    return f"def solution():\n    return '{digest[:12]}'  # deterministic loopback answer"


def hashed_embedding(text: str, dim: int = 64) -> list[float]:
    """A deterministic bag-of-words vector: each lower-cased word adds 1 at a hashed position."""
    vec = [0.0] * dim
    for word in text.lower().split():
        vec[int(hashlib.sha256(word.encode()).hexdigest(), 16) % dim] += 1.0
    return vec


def default_logprobs(body: dict[str, Any], text: str, k: int) -> list[tuple[str, float, list[tuple[str, float]]]]:
    """Whitespace-led words as tokens; each the top choice with probability 1/2, then ``k - 1`` made-up
    alternatives with 1/4, 1/8, ..."""
    out = []
    for token in re.findall(r"\s*\S+|\s+", text):
        alts = [(token if j == 0 else f"{token.strip() or '_'}~{j}", math.log(0.5 ** (j + 1))) for j in range(k)]
        out.append((token, math.log(0.5), alts))
    return out


def logprobs_payload(entries: list[tuple[str, float, list[tuple[str, float]]]], *, chat: bool) -> dict[str, Any]:
    """The ``logprobs`` object of a choice, shaped as each endpoint sends it."""
    if chat:
        def item(token: str, value: float) -> dict[str, Any]:
            return {"token": token, "logprob": value, "bytes": list(token.encode())}
        return {"content": [{**item(t, v), "top_logprobs": [item(a, b) for a, b in alts]} for t, v, alts in entries],
                "refusal": None}
    offsets = [sum(len(t) for t, _, _ in entries[:i]) for i in range(len(entries))]
    return {"tokens": [t for t, _, _ in entries], "token_logprobs": [v for _, v, _ in entries],
            "top_logprobs": [dict(alts) for _, _, alts in entries], "text_offset": offsets}


def requested_logprobs(body: dict[str, Any], *, chat: bool) -> int:
    """How many alternatives per token the request asks for (0: none)."""
    if chat:
        return int(body.get("top_logprobs") or 0) if body.get("logprobs") else 0
    return int(body.get("logprobs") or 0)


def last_user_text(body: dict[str, Any]) -> str:
    if "messages" in body:
        users = [m for m in body["messages"] if m.get("role") == "user"] or body["messages"]
        return str(users[-1].get("content", "")) if users else ""
    return str(body.get("prompt", ""))


class LoopbackServer:
    """An OpenAI-compatible server on 127.0.0.1 in a background thread. Use as a context manager
    or call :meth:`start` / :meth:`stop`. ``url`` is the base URL to give the client (ends in /v1)."""

    def __init__(self, *, answer: Answer = None, latency: float = 0.0, faults: Faults | None = None,
                 slots: int | None = None, cached_fraction: float = 0.0, reasoning_tokens: int = 0,
                 batch_polls: int = 1, batch_item_fail_rate: float = 0.0, seed: int = 0,
                 logprobs: Logprobs = default_logprobs):
        self.answer, self.latency, self.faults = answer, latency, faults or Faults()
        self.embed: Callable[[str], list[float]] = hashed_embedding
        self.embedding_models: set[str] | None = None   # None: any model name is served
        self.logprobs = logprobs
        self.slots, self.cached_fraction, self.reasoning_tokens = slots, cached_fraction, reasoning_tokens
        self.batch_polls, self.batch_item_fail_rate = batch_polls, batch_item_fail_rate
        self.rng = random.Random(seed)
        self.tally = Tally()
        self.port = 0
        self._in_flight = 0
        self._counter = 0
        self._files: dict[str, bytes] = {}
        self._batches: dict[str, dict[str, Any]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._sem: asyncio.Semaphore | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> "LoopbackServer":
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve_thread, args=(ready,), daemon=True,
                                        name="loopback-openai")
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("loopback server did not start")
        return self

    def stop(self) -> None:
        if self._loop and self._runner:
            fut = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop)
            fut.result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread:
            self._thread.join(10)
        self._loop = self._runner = self._thread = None

    def __enter__(self) -> "LoopbackServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve_thread(self, ready: threading.Event) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self.setup())
        ready.set()
        self._loop.run_forever()
        self._loop.close()

    async def setup(self, port: int = 0) -> None:
        """Bind and start serving on the running loop (also used by the standalone entry point)."""
        self._sem = asyncio.Semaphore(self.slots) if self.slots else None
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._completion)
        app.router.add_post("/v1/completions", self._completion)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_post("/v1/files", self._upload)
        app.router.add_get("/v1/files/{file_id}/content", self._file_content)
        app.router.add_post("/v1/batches", self._create_batch)
        app.router.add_get("/v1/batches", self._list_batches)
        app.router.add_get("/v1/batches/{batch_id}", self._get_batch)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port, backlog=4096)
        await site.start()
        self.port = self._runner.addresses[0][1]

    # -- completions -----------------------------------------------------------------------------
    async def _completion(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body = json.loads(raw)
        self.tally.requests += 1
        fault = self._draw_fault()
        if fault is not None:
            return await self._inject(fault, request)
        self._in_flight += 1
        self.tally.max_in_flight = max(self.tally.max_in_flight, self._in_flight)
        try:
            await self._wait_latency()
        finally:
            self._in_flight -= 1
        payload = self.respond(body, chat=request.path.endswith("/chat/completions"))
        self.tally.bodies[hashlib.sha256(raw).hexdigest()] += 1
        self.tally.statuses[200] += 1
        return web.Response(body=json.dumps(payload).encode(), content_type="application/json")

    async def _wait_latency(self) -> None:
        if self._sem is None:
            if self.latency:
                await asyncio.sleep(self.latency)
            return
        async with self._sem:
            await asyncio.sleep(self.latency)

    def _draw_fault(self) -> str | None:
        f, x = self.faults, self.rng.random()
        for name, rate in (("429", f.rate_429), ("429ra", f.rate_429_retry_after), ("500", f.rate_500),
                           ("hang", f.rate_timeout), ("drop", f.rate_drop), ("400", f.rate_400),
                           ("401", f.rate_401)):
            if x < rate:
                return name
            x -= rate
        return None

    async def _inject(self, fault: str, request: web.Request) -> web.StreamResponse:
        self.tally.statuses[fault] += 1
        if fault == "hang":
            await asyncio.sleep(self.faults.hang_s)
        if fault == "drop":
            request.transport.abort()
            return web.Response(status=500)
        if fault in ("429", "429ra"):
            headers = {"retry-after": f"{self.faults.retry_after_s:g}"} if fault == "429ra" else {}
            return _error(429, "rate limit reached (loopback)", "rate_limit_exceeded", headers)
        if fault == "400":
            return _error(400, "invalid request (loopback)", "invalid_request_error")
        if fault == "401":
            return _error(401, "incorrect API key provided (loopback)", "invalid_api_key")
        return _error(500, "internal error (loopback)", "server_error")

    def respond(self, body: dict[str, Any], *, chat: bool, tally: bool = True) -> dict[str, Any]:
        """Build the completion object for ``body`` and add its usage to the tally."""
        text = self._answer_text(body)
        finish = "stop"
        max_tokens = body.get("max_tokens") or body.get("max_completion_tokens")
        if max_tokens is not None and count_tokens(text) > max_tokens:
            text, finish = " ".join(text.split()[:max_tokens]), "length"
        usage = self._usage(body, text)
        if tally:
            self._count(usage, batch=False)
        self._counter += 1
        choice: dict[str, Any] = {"index": 0, "finish_reason": finish, "logprobs": None}
        k = requested_logprobs(body, chat=chat)
        if k:
            choice["logprobs"] = logprobs_payload(self.logprobs(body, text, k), chat=chat)
        if chat:
            choice["message"] = {"role": "assistant", "content": text}
        else:
            choice["text"] = text
        return {"id": f"cmpl-{self._counter}", "object": "chat.completion" if chat else "text_completion",
                "created": int(time.time()), "model": body.get("model", "loopback"),
                "choices": [choice], "usage": usage}

    def _answer_text(self, body: dict[str, Any]) -> str:
        a = self.answer
        if a is None:
            return default_answer(body)
        if callable(a):
            return a(body)
        if isinstance(a, list):
            return a[self._counter % len(a)]
        return a.get(last_user_text(body)) or default_answer(body)

    def _usage(self, body: dict[str, Any], text: str) -> dict[str, Any]:
        p = prompt_tokens(body)
        c = count_tokens(text) + self.reasoning_tokens
        return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c,
                "prompt_tokens_details": {"cached_tokens": int(p * self.cached_fraction)},
                "completion_tokens_details": {"reasoning_tokens": self.reasoning_tokens}}

    def _count(self, usage: dict[str, Any], *, batch: bool) -> None:
        t = self.tally
        if batch:
            t.batch_items += 1
            t.batch_prompt_tokens += usage["prompt_tokens"]
            t.batch_completion_tokens += usage["completion_tokens"]
            return
        t.answered += 1
        t.prompt_tokens += usage["prompt_tokens"]
        t.completion_tokens += usage["completion_tokens"]
        t.cached_tokens += usage["prompt_tokens_details"]["cached_tokens"]
        t.reasoning_tokens += usage["completion_tokens_details"]["reasoning_tokens"]

    async def _embeddings(self, request: web.Request) -> web.Response:
        """``/v1/embeddings``: ``self.embed`` of each input text (a hashed bag of words by default)."""
        body = await request.json()
        if self.embedding_models is not None and body.get("model") not in self.embedding_models:
            return _error(404, f"model {body.get('model')!r} not found (loopback)", "model_not_found")
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        self.tally.embedding_inputs += len(texts)
        data = [{"object": "embedding", "index": i, "embedding": self.embed(t)} for i, t in enumerate(texts)]
        tokens = sum(count_tokens(t) for t in texts)
        return web.json_response({"object": "list", "data": data, "model": body.get("model"),
                                  "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [
            {"id": "loopback", "object": "model", "created": 0, "owned_by": "tests"}]})

    # -- files and batches -----------------------------------------------------------------------
    async def _upload(self, request: web.Request) -> web.Response:
        form = await request.post()
        upload = form["file"]
        data = upload.file.read() if hasattr(upload, "file") else str(upload).encode()
        return web.json_response(self._add_file(data, getattr(upload, "filename", "upload.jsonl"),
                                                str(form.get("purpose", "batch"))))

    def _add_file(self, data: bytes, filename: str, purpose: str) -> dict[str, Any]:
        file_id = f"file-{len(self._files) + 1}"
        self._files[file_id] = data
        return {"id": file_id, "object": "file", "bytes": len(data), "created_at": int(time.time()),
                "filename": filename, "purpose": purpose, "status": "processed"}

    async def _file_content(self, request: web.Request) -> web.Response:
        data = self._files.get(request.match_info["file_id"])
        if data is None:
            return _error(404, "no such file", "not_found")
        return web.Response(body=data, content_type="application/octet-stream")

    async def _create_batch(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("input_file_id") not in self._files:
            return _error(400, "unknown input_file_id", "invalid_request_error")
        self.tally.batches_created += 1
        batch_id = f"batch_{len(self._batches) + 1}"
        self._batches[batch_id] = {
            "id": batch_id, "object": "batch", "endpoint": body["endpoint"], "status": "validating",
            "input_file_id": body["input_file_id"], "completion_window": body["completion_window"],
            "created_at": int(time.time()), "metadata": body.get("metadata"), "polls": 0,
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
        }
        return web.json_response(self._public(batch_id))

    async def _get_batch(self, request: web.Request) -> web.Response:
        batch_id = request.match_info["batch_id"]
        if batch_id not in self._batches:
            return _error(404, "no such batch", "not_found")
        b = self._batches[batch_id]
        b["polls"] += 1
        if b["status"] != "completed" and b["polls"] >= self.batch_polls:
            self._run_batch(b)
        elif b["status"] == "validating":
            b["status"] = "in_progress"
        return web.json_response(self._public(batch_id))

    async def _list_batches(self, request: web.Request) -> web.Response:
        data = [self._public(b) for b in reversed(list(self._batches))]
        return web.json_response({"object": "list", "data": data, "has_more": False,
                                  "first_id": data[0]["id"] if data else None,
                                  "last_id": data[-1]["id"] if data else None})

    def _public(self, batch_id: str) -> dict[str, Any]:
        return {k: v for k, v in self._batches[batch_id].items() if k != "polls"}

    def _run_batch(self, b: dict[str, Any]) -> None:
        """Answer every line of the input file; some fail when ``batch_item_fail_rate`` says so."""
        ok, failed = [], []
        for line in self._files[b["input_file_id"]].decode().splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            (failed if self.rng.random() < self.batch_item_fail_rate else ok).append(item)
        out = [self._batch_ok(item, b["endpoint"]) for item in ok]
        err = [_batch_error(item) for item in failed]
        b["output_file_id"] = self._add_file(_jsonl(out), "output.jsonl", "batch_output")["id"] if out else None
        b["error_file_id"] = self._add_file(_jsonl(err), "errors.jsonl", "batch_output")["id"] if err else None
        b["status"], b["completed_at"] = "completed", int(time.time())
        b["request_counts"] = {"total": len(ok) + len(failed), "completed": len(ok), "failed": len(failed)}

    def _batch_ok(self, item: dict[str, Any], endpoint: str) -> dict[str, Any]:
        payload = self.respond(item["body"], chat=endpoint.endswith("chat/completions"), tally=False)
        self._count(payload["usage"], batch=True)
        return {"id": f"batch_req_{item['custom_id']}", "custom_id": item["custom_id"], "error": None,
                "response": {"status_code": 200, "request_id": payload["id"], "body": payload}}


def _batch_error(item: dict[str, Any]) -> dict[str, Any]:
    return {"id": f"batch_req_{item['custom_id']}", "custom_id": item["custom_id"], "response": None,
            "error": {"code": "server_error", "message": "loopback batch item failure"}}


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def _error(status: int, message: str, code: str, headers: dict[str, str] | None = None) -> web.Response:
    body = {"error": {"message": message, "type": code, "code": code, "param": None}}
    return web.Response(status=status, body=json.dumps(body).encode(), content_type="application/json",
                        headers=headers)


# -- pytest fixtures (imported by tests/conftest.py) ------------------------------------------------
try:
    import pytest
except ImportError:  # standalone use by bench scripts needs no pytest
    pytest = None

if pytest is not None:
    @pytest.fixture
    def loopback_server(request: Any) -> Any:
        """A started server; parametrize indirectly with a dict of ``LoopbackServer`` arguments."""
        with LoopbackServer(**(getattr(request, "param", None) or {})) as server:
            yield server

    @pytest.fixture
    def make_loopback() -> Any:
        """A factory of started servers (``make_loopback(latency=0.05, slots=4)``), all stopped after."""
        servers: list[LoopbackServer] = []

        def make(**kwargs: Any) -> LoopbackServer:
            servers.append(LoopbackServer(**kwargs).start())
            return servers[-1]

        yield make
        for server in servers:
            server.stop()


# -- standalone entry point (bench scripts run the server in its own process) ----------------------
def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="loopback OpenAI-compatible server")
    p.add_argument("--latency", type=float, default=0.0)
    p.add_argument("--slots", type=int, default=None)
    p.add_argument("--port", type=int, default=0)
    return p.parse_args(argv)


async def _serve_forever(args: argparse.Namespace) -> None:
    server = LoopbackServer(latency=args.latency, slots=args.slots)
    await server.setup(args.port)
    print(server.url, flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # serve until the parent closes our stdin
    print(json.dumps({"requests": server.tally.requests, "answered": server.tally.answered}), flush=True)


if __name__ == "__main__":
    asyncio.run(_serve_forever(_parse(None)))
