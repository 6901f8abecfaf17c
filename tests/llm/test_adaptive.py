"""Adaptive concurrency end to end: a server that queues instead of refusing, and one that says 429."""

from __future__ import annotations

from statistics import mean

from tests.llm.conftest import chat_requests
from tests.loopback import Faults


def test_concurrency_settles_against_a_queueing_server_without_tuning(make_loopback, make_client):
    server = make_loopback(latency=0.05, slots=4)   # 4 slots; everything else waits in its queue
    client = make_client(server, max_concurrency=64)
    results = client.generate(chat_requests(500), stage="s", stage_fp="f", progress=False)
    assert all(r.ok for r in results)
    history = list(client.limit.history)
    settled = history[len(history) // 2:]
    # a few times the real slots (the floor it sees includes the first burst's queueing), far below
    # the 64 allowed, and steady rather than swinging
    assert 4 <= mean(settled) <= 40, settled
    assert max(settled) - min(settled) <= 0.5 * mean(settled), settled


def test_429s_shrink_the_limit_and_every_request_still_completes(make_loopback, make_client):
    server = make_loopback(latency=0.01, faults=Faults(rate_429_retry_after=0.15, retry_after_s=0.02), seed=3)
    client = make_client(server, max_concurrency=32, max_retries=10)
    results = client.generate(chat_requests(300), stage="s", stage_fp="f", progress=False)
    assert all(r.ok for r in results)
    assert min(client.limit.history) < 32
