"""Flow control: the adaptive limit's reaction to 429s, errors and latency; backoff bounds; rate buckets."""

from __future__ import annotations

import random

from compiler.llm.concurrency import AdaptiveLimit, RateLimiter, RetryPolicy


def test_limit_halves_on_429_once_per_window_and_honours_retry_after():
    lim = AdaptiveLimit(64)
    start = lim.limit
    lim.on_overload(retry_after=5.0)
    lim.on_overload(retry_after=None)   # same window: counted once
    assert lim.limit == start / 2 and not lim.slow_start
    assert not lim._free()              # paused by Retry-After


def test_slow_start_from_a_quarter_of_the_maximum_while_latency_stays_at_its_floor():
    lim = AdaptiveLimit(256)
    assert lim.limit == 64
    for _ in range(64 + 128):           # two round trips of fast answers with every slot busy
        lim.in_flight = int(lim.limit) - 1
        lim.on_success(0.2)
    assert lim.limit == 256 and not lim.slow_start


def test_limit_grows_back_when_healthy():
    lim = AdaptiveLimit(64, cut_window_s=0.0)
    for _ in range(3):
        lim.on_overload(None)
    low = lim.limit
    for _ in range(50):                 # idle capacity is no evidence: no growth
        lim.on_success(0.1)
    assert lim.limit == low
    for _ in range(1000):               # saturated and fast: grows back to the maximum
        lim.in_flight = int(lim.limit)
        lim.on_success(0.1)
    assert low < 10 and lim.limit == 64


def test_rising_latency_pulls_the_limit_down_to_an_equilibrium():
    lim = AdaptiveLimit(64, slack_s=0.0)
    lim.on_success(0.05)                # the floor
    for _ in range(2000):               # a server with 8 slots: latency grows with what we send
        lim.in_flight = int(lim.limit)
        lim.on_success(0.05 * max(1.0, lim.limit / 8))
    assert 8 <= lim.limit <= 24


def test_backoff_is_exponential_capped_and_respects_retry_after():
    policy, rng = RetryPolicy(base_s=0.5, cap_s=4.0), random.Random(0)
    delays = [policy.delay(k, None, rng) for k in range(1, 8)]
    assert 0.25 <= delays[0] <= 0.5 and all(2.0 <= d <= 4.0 for d in delays[3:])
    assert policy.delay(1, 3.0, rng) >= 3.0


def test_rate_limiter_asks_to_wait_once_a_bucket_is_empty():
    rl = RateLimiter(rpm=60, tpm=None)   # one request per second, burst of one
    assert rl._take((1.0, 0.0)) == 0.0
    assert rl._take((1.0, 0.0)) > 0.5
    assert not RateLimiter(None, None).active


def test_our_own_event_loop_lag_is_not_read_as_a_server_queue():
    def run(lag: float) -> float:
        lim = AdaptiveLimit(64, slack_s=0.0)
        lim.limit, lim.slow_start = 64.0, False
        lim.in_flight = 64
        lim.on_success(0.1)
        for _ in range(20):
            lim.note_loop_lag(lag)
        for _ in range(200):
            lim.in_flight = int(lim.limit)
            lim.on_success(0.4)         # 0.1 s at the server + 0.3 s waiting for a starved loop
        return lim.limit

    assert run(lag=0.3) == 64           # the delay is ours: no cut
    assert run(lag=0.0) < 40            # the same latencies from the server: a queue, cut


def test_loop_lag_never_drags_the_floor_below_what_the_server_takes():
    lim = AdaptiveLimit(256)
    for _ in range(20):
        lim.note_loop_lag(0.17)         # a starved client, answers at a steady 0.2 s
    for _ in range(3000):
        lim.in_flight = int(lim.limit)
        lim.on_success(0.2)
    assert lim.base == 0.2 and lim.limit == 256
