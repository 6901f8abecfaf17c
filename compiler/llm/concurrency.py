"""Flow control for concurrent backends: an adaptive concurrency limit, rpm/tpm limits, retry backoff.

The limit starts at a quarter of the configured maximum (so the first round trips show the server's
latency floor before any queue builds up), doubles per round trip while latency stays near that
floor (slow start), and from then on follows the server. Two signals shrink it: 429s
(multiplicatively, at most once per round trip, and ``Retry-After`` pauses new sends), and latency
rising above its observed floor, which is how servers that queue instead of refusing (``vllm serve``,
llama.cpp) say they are saturated. The latency rule is a gradient: with ``base`` the floor and
``recent`` a moving average, the target is ``limit * min(1, tolerance * base / recent) + sqrt(limit)``,
so a healthy server lets the limit grow again by about its square root per round trip and a queueing
one pulls it down to a few times its real number of slots, without manual tuning. A small absolute
slack (50 ms) keeps scheduling noise on millisecond-fast servers from reading as congestion, and cuts
happen at most once per window (two round trips, at least 0.5 s) so one burst of errors counts once.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import deque
from dataclasses import dataclass


class AdaptiveLimit:
    """How many requests may be in flight now. ``acquire``/``release`` bracket each attempt."""

    def __init__(self, max_limit: int, *, min_limit: int = 1, tolerance: float = 2.0,
                 smoothing: float = 0.1, base_window: int = 2000, slack_s: float = 0.05,
                 cut_window_s: float = 0.5):
        self.max_limit, self.min_limit = max_limit, min_limit
        self.slack_s, self.cut_window_s = slack_s, cut_window_s
        self.tolerance, self.smoothing = tolerance, smoothing
        self.limit = float(max(min_limit, min(max_limit, max(8, max_limit // 4))))
        self.slow_start = True
        self.in_flight = 0
        self.base: float | None = None
        self.recent: float | None = None
        self.cooldown_until = 0.0
        self.loop_lag = 0.0
        self._samples = 0
        self._window_min = math.inf
        self._base_window = base_window
        self._last_cut = 0.0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self.history: deque[float] = deque(maxlen=1000)   # the limit every 16 updates (tests, bench)

    # -- admission -----------------------------------------------------------------------------
    def _free(self) -> bool:
        return self.in_flight < int(self.limit) and time.monotonic() >= self.cooldown_until

    async def acquire(self) -> None:
        while not self._free():
            pause = self.cooldown_until - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
                continue
            fut = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            await fut
        self.in_flight += 1

    def release(self) -> None:
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        room = int(self.limit) - self.in_flight
        while room > 0 and self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                room -= 1

    # -- signals -------------------------------------------------------------------------------
    def note_loop_lag(self, lag: float) -> None:
        """How late this process's event loop runs its callbacks (a moving average). A starved
        client sees every answer late; that delay is ours, not the server's, so it is taken out of
        the recent latency before comparing it with the floor (the floor itself stays a raw
        measurement, so it can never drop below what the server really takes)."""
        self.loop_lag = 0.7 * self.loop_lag + 0.3 * max(0.0, lag)

    def on_success(self, latency: float) -> None:
        self._track_latency(latency)
        recent = max(self.recent - self.loop_lag, self.base)
        healthy = recent <= self.tolerance * self.base + self.slack_s
        if self.slow_start and healthy:
            if self.in_flight + 1 >= self.limit / 2:
                self._set(self.limit + 1)      # doubles per round trip, like TCP slow start
            self.slow_start = self.limit < self.max_limit
            return
        self.slow_start = False
        gradient = max(0.5, min(1.0, (self.tolerance * self.base + self.slack_s) / recent))
        target = self.limit * gradient + math.sqrt(self.limit)
        if self.in_flight < self.limit / 2:   # not using what we have: no evidence to grow on
            target = min(target, self.limit)
        step = min(self.smoothing, 1.0 / self.limit)   # about one full move per round trip
        self._set((1 - step) * self.limit + step * target)

    def on_overload(self, retry_after: float | None) -> None:
        """A 429: halve (once per round trip) and honour the server's pause."""
        if retry_after:
            self.cooldown_until = max(self.cooldown_until, time.monotonic() + retry_after)
        self._cut(0.5)

    def on_error(self) -> None:
        """A timeout, 5xx or dropped connection: a milder cut (once per round trip)."""
        self._cut(0.9)

    def _cut(self, factor: float) -> None:
        self.slow_start = False
        now = time.monotonic()
        if now - self._last_cut < max(2 * (self.recent or 0.0), self.cut_window_s):
            return
        self._last_cut = now
        self._set(self.limit * factor)

    def _set(self, value: float) -> None:
        self.limit = min(float(self.max_limit), max(float(self.min_limit), value))
        self._samples += 1
        if self._samples % 16 == 0:
            self.history.append(self.limit)
        self._wake()

    def _track_latency(self, latency: float) -> None:
        """``base``: the floor over a sliding window (so it can drift up if the server gets slower
        for good); ``recent``: an exponential moving average."""
        self._window_min = min(self._window_min, latency)
        if self.base is None or latency < self.base:
            self.base = latency
        if self._samples and self._samples % self._base_window == 0:
            self.base, self._window_min = self._window_min, math.inf
        self.recent = latency if self.recent is None else 0.9 * self.recent + 0.1 * latency


class RateLimiter:
    """Token buckets for requests and tokens per minute (either may be None). A bucket holds at most
    one second's worth, so bursts stay within what per-minute limits tolerate."""

    def __init__(self, rpm: int | None, tpm: int | None):
        self._buckets = [(b, b / 60.0 if b else 0.0) for b in (rpm, tpm)]
        self._level = [max(1.0, b / 60.0) if b else 0.0 for b in (rpm, tpm)]
        self._stamp = time.monotonic()
        self.active = rpm is not None or tpm is not None

    async def acquire(self, tokens: int) -> None:
        if not self.active:
            return
        need = (1.0, float(tokens))
        while True:
            wait = self._take(need)
            if wait <= 0:
                return
            await asyncio.sleep(wait)

    def _take(self, need: tuple[float, float]) -> float:
        now = time.monotonic()
        elapsed, self._stamp = now - self._stamp, now
        wait = 0.0
        for i, (per_min, per_s) in enumerate(self._buckets):
            if not per_min:
                continue
            cap = max(1.0, per_s)
            self._level[i] = min(cap, self._level[i] + elapsed * per_s)
            amount = min(need[i], cap)
            if self._level[i] < amount:
                wait = max(wait, (amount - self._level[i]) / per_s)
        if wait > 0:
            return wait
        for i, (per_min, _) in enumerate(self._buckets):
            if per_min:
                self._level[i] -= min(need[i], max(1.0, self._buckets[i][1]))
        return 0.0


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: attempt k waits ``base * 2**(k-1)`` capped at ``cap``, drawn
    from its upper half; a server's ``Retry-After`` wins when it is longer."""

    base_s: float = 0.5
    cap_s: float = 30.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        ceiling = min(self.cap_s, self.base_s * (2 ** max(0, attempt - 1)))
        backoff = ceiling / 2 + rng.random() * ceiling / 2
        if retry_after is not None:
            return max(backoff, retry_after) + rng.random() * 0.1 * max(retry_after, 0.01)
        return backoff
