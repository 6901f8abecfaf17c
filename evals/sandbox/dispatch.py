"""Feeding fork servers from the calling thread: one loop keeps every held server busy.

Each server keeps a second job queued behind the running one, so it never waits for the parent
between jobs; the loop waits on all the servers' reply pipes at once and hands each reply to
``on_done`` as it arrives. There are no helper threads: no hand-offs between threads (nor
contention for the interpreter lock) per job, and callbacks run in the caller's thread.
"""

from __future__ import annotations

import collections
import select
import time
from typing import Callable

from evals.sandbox.worker import REPLY_MARGIN, Worker, WorkerError

PIPELINE_DEPTH = 2
OnDone = Callable[[int, "dict | Exception"], None]


class Dispatch:
    """The jobs of one ``Pool.run`` call and the servers it holds."""

    def __init__(self, messages: list[dict], on_done: OnDone) -> None:
        self.messages, self.on_done = messages, on_done
        self.pending = collections.deque(range(len(messages)))
        self.inflight: dict[Worker, collections.deque[int]] = {}
        self.since: dict[Worker, float] = {}          # when each server's oldest job began to wait

    def busy(self) -> bool:
        return bool(self.pending) or any(self.inflight.values())

    def add(self, worker: Worker) -> None:
        """Start feeding ``worker``."""
        self.inflight[worker] = collections.deque()
        self._fill(worker)

    def held(self) -> list[Worker]:
        return list(self.inflight)

    def unfinished(self, worker: Worker) -> bool:
        """Whether ``worker`` still holds jobs of this call (its server then must not be reused)."""
        return bool(self.inflight.get(worker))

    def step(self) -> None:
        """Wait for the next replies (or the first overdue one) and hand them out."""
        for worker, jobs in self.inflight.items():
            if not jobs:
                self._fill(worker)
        waiting = {w.fileno(): w for w, jobs in self.inflight.items() if jobs}
        if not waiting:
            return
        deadline = min(self.since[w] + self._patience(w) for w in waiting.values())
        poller = select.poll()
        for fd in waiting:
            poller.register(fd, select.POLLIN)
        ready = {fd for fd, _ in poller.poll(max(deadline - time.monotonic(), 0.0) * 1000)}
        for fd in ready:
            self._collect(waiting[fd])
        now = time.monotonic()
        for fd, worker in waiting.items():
            if fd not in ready and self.inflight[worker] and now >= self.since[worker] + self._patience(worker):
                self._guard(worker, lambda w=worker: w.abandon(now - self.since[w]))

    def _patience(self, worker: Worker) -> float:
        head = self.messages[self.inflight[worker][0]]
        return float(head["wall_seconds"]) + REPLY_MARGIN

    def _collect(self, worker: Worker) -> None:
        def receive() -> None:
            reply = worker.receive()
            index = self.inflight[worker].popleft()
            self.since[worker] = time.monotonic()
            try:
                self._submit_more(worker)               # the server's next job before the verdict
            finally:
                self.on_done(index, reply)

        self._guard(worker, receive)

    def _fill(self, worker: Worker) -> None:
        self._guard(worker, lambda: self._submit_more(worker))

    def _submit_more(self, worker: Worker) -> None:
        jobs = self.inflight[worker]
        while len(jobs) < PIPELINE_DEPTH and self.pending:
            index = self.pending.popleft()
            if not jobs:
                self.since[worker] = time.monotonic()
            jobs.append(index)
            worker.submit(self.messages[index])

    def _guard(self, worker: Worker, action: Callable[[], None]) -> None:
        """Run ``action``; when the server is lost, rerun what it held (each job once more on a
        restarted server) and go on feeding it."""
        while True:
            try:
                action()
                return
            except WorkerError:
                jobs = self.inflight[worker]
                while jobs:
                    lost = jobs.popleft()
                    self.on_done(lost, run_with_retry(worker, self.messages[lost]))
                action = lambda: self._submit_more(worker)    # noqa: E731 - then keep it fed


def run_with_retry(worker: Worker, message: dict) -> dict | Exception:
    """One job; a server lost during it (killed from outside, say) is restarted and the job tried
    once more before it is reported as a sandbox failure."""
    try:
        return worker.run(message)
    except WorkerError:
        pass
    try:
        return worker.run(message)
    except WorkerError as exc:
        return exc
