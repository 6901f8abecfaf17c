"""Top log-probabilities through the real openai client on the loopback server: asked for only when a
request wants them, parsed from both endpoints, cached with the answer, and never changing the cache
key of a request that does not ask for them."""

from __future__ import annotations

import hashlib
import json

from compiler.llm import cache
from compiler.llm.logprobs import LOG_ZERO, parse
from compiler.llm.types import LLMRequest, key_of
from tests.loopback import LoopbackServer

ANSWER = "def f(x):\n    return x + 1"
TOKENS = ["def", " f(x):", "\n    return", " x", " +", " 1"]


def test_a_request_without_logprobs_keeps_its_old_key():
    """The key hashes exactly the payload it always did (written out here by hand)."""
    req = LLMRequest(messages=(("user", "hi"),), max_tokens=64, temperature=0.2, seed=7)
    old = ('{"backend":"openai","max_tokens":64,"messages":[["user","hi"]],"model":"m","prompt":null,'
           '"revision":null,"sample_index":0,"seed":7,"stop":[],"temperature":0.2,"top_p":1.0}')
    assert req.key_json("openai", "m") == old
    assert req.cache_key("openai", "m") == hashlib.sha256(old.encode()).hexdigest() == key_of(old)
    asked = LLMRequest(messages=(("user", "hi"),), max_tokens=64, temperature=0.2, seed=7, top_logprobs=5)
    assert asked.cache_key("openai", "m") != req.cache_key("openai", "m")
    assert json.loads(asked.key_json("openai", "m"))["top_logprobs"] == 5


def test_chat_and_text_requests_get_their_logprobs(make_client):
    with LoopbackServer(answer=lambda body: ANSWER) as server:
        client = make_client(server)
        chat, text, plain = client.generate([
            LLMRequest(messages=(("user", "write f"),), top_logprobs=3, max_tokens=64),
            LLMRequest(prompt="# write f\n", top_logprobs=2, max_tokens=64),
            LLMRequest(prompt="# write f\n", max_tokens=64)], stage="s", stage_fp="f")
    assert chat.ok and chat.text == ANSWER and [t for t, _, _ in chat.logprobs] == TOKENS
    token, value, alts = chat.logprobs[1]
    assert value == alts[0][1] and [a for a, _ in alts] == [" f(x):", "f(x):~1", "f(x):~2"]
    assert [round(b, 4) for _, b in alts] == [-0.6931, -1.3863, -2.0794]
    assert [t for t, _, _ in text.logprobs] == TOKENS and len(text.logprobs[0][2]) == 2
    assert text.logprobs[0][2][0][1] > text.logprobs[0][2][1][1]        # best first
    assert plain.logprobs is None and plain.text == ANSWER


def test_logprobs_are_cached_with_the_answer(make_client, store):
    with LoopbackServer(answer=lambda body: ANSWER) as server:
        client = make_client(server)
        req = LLMRequest(messages=(("user", "write f"),), top_logprobs=2, max_tokens=64)
        [first] = client.generate([req], stage="s", stage_fp="f")
        [again] = client.generate([req], stage="s", stage_fp="f")
        assert server.tally.answered == 1
    assert again.status == "cache_hit" and again.logprobs == first.logprobs
    stored = store.con.execute("SELECT response FROM llm_cache").fetchall()[0][0]
    assert json.loads(stored)["logprobs"][0] == ["def", first.logprobs[0][1], [[a, b] for a, b in first.logprobs[0][2]]]


def test_an_entry_written_before_logprobs_existed_still_reads():
    old = '{"text": "x", "finish_reason": "stop", "usage": {"prompt_tokens": 1, "completion_tokens": 1}}'
    completion = cache.completion_from_json(old)
    assert completion.text == "x" and completion.logprobs is None
    assert "logprobs" not in json.loads(cache.response_json(completion))


def test_parse_handles_missing_and_infinite_values():
    choice = {"logprobs": {"tokens": ["a", "b"], "token_logprobs": [None, -0.5],
                           "top_logprobs": [None, {"b": -0.5, "c": float("-inf")}]}}
    assert parse(choice, chat=False) == (("a", LOG_ZERO, ()), ("b", -0.5, (("b", -0.5), ("c", LOG_ZERO))))
    assert parse({"logprobs": None}, chat=True) is None
    assert parse({"logprobs": {"content": None}}, chat=True) is None
