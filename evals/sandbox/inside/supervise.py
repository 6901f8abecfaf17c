"""Watching one child: collect its three output pipes, enforce the wall-clock safety net and the
output ceiling, and make sure nothing it started survives it.

Every process a job starts is a descendant of the fork server, which is a child subreaper, so
after the job any survivor (a daemon that double-forked, a fork bomb) is found by walking the
server's descendants; inside a private pid namespace ``kill(-1)`` sweeps them all at once.
"""

from __future__ import annotations

import os
import select
import signal
import time

_CHUNK = 1 << 16


class Stream:
    """One pipe's captured bytes: the first ``cap`` bytes kept, the rest only counted."""

    def __init__(self, fd: int, cap: int) -> None:
        self.fd, self.cap = fd, cap
        self.kept = bytearray()
        self.total = 0
        self.open = True

    def feed(self, data: bytes) -> None:
        room = self.cap - len(self.kept)
        if room > 0:
            self.kept += data[:room]
        self.total += len(data)


class Outcome:
    """How a child ended: raw wait status, resource usage, whether the server stopped it
    (``killed``: "wall" or "output") and the elapsed time."""

    def __init__(self) -> None:
        self.status: int | None = None
        self.rusage = None
        self.killed: str | None = None
        self.wall_s = 0.0


def _read(stream: Stream) -> None:
    try:
        data = os.read(stream.fd, _CHUNK)
    except BlockingIOError:
        return
    if data:
        stream.feed(data)
    else:
        stream.open = False


def _over(streams: list[Stream], ceiling: int) -> bool:
    return any(s.total > ceiling for s in streams)


# A quiet first wait: most jobs end within this, and until then the server sleeps on the child's
# exit alone instead of waking for each event line it writes (a pipe holds 64 KiB, so a child
# that writes more only waits here, and cannot pass an output ceiling above PIPE_ROOM).
QUIET_S = 0.05
PIPE_ROOM = 1 << 20


class Watch:
    """A job's pipes, poller and limits, all set up before the fork: the server then does as
    little as possible while the child runs (each page it writes meanwhile is copied, since the
    fork shared all its memory with the child)."""

    def __init__(self, streams: list[Stream], write_ends: tuple[int, ...], wall_s: float, ceiling: int,
                 own_pidns: bool) -> None:
        self.streams, self.write_ends = streams, write_ends
        self.wall_s, self.ceiling, self.own_pidns = wall_s, ceiling, own_pidns
        self.poller, self.by_fd = select.poll(), {s.fd: s for s in streams}
        self.quiet = select.poll()
        self.quiet_ms = min(QUIET_S, wall_s) * 1000 if ceiling > PIPE_ROOM else 0
        self.outcome = Outcome()
        for s in streams:
            os.set_blocking(s.fd, False)
            self.poller.register(s.fd, select.POLLIN | select.POLLHUP)

    def run(self, pid: int) -> Outcome:
        """Run until the child exits (or is stopped), then sweep survivors and drain the pipes."""
        for fd in self.write_ends:
            os.close(fd)
        started = time.monotonic()
        outcome = self.outcome
        pidfd = os.pidfd_open(pid)
        try:
            self.quiet.register(pidfd, select.POLLIN)
            if self.quiet_ms and self.quiet.poll(self.quiet_ms):
                _, outcome.status, outcome.rusage = os.wait4(pid, 0)
            else:
                self._follow(pid, pidfd, outcome, started, self.wall_s, self.ceiling)
        finally:
            os.close(pidfd)
        outcome.wall_s = time.monotonic() - started
        if outcome.status is None:
            _kill(pid)
            _, outcome.status, outcome.rusage = os.wait4(pid, 0)
        sweep(pid, self.own_pidns)
        _drain(self.streams)
        return outcome

    def _follow(self, pid: int, pidfd: int, outcome: Outcome, started: float, wall_s: float, ceiling: int) -> None:
        """Read the pipes as they fill until the child exits, the wall-clock net or the output
        ceiling is reached."""
        poller, streams = self.poller, self.streams
        poller.register(pidfd, select.POLLIN)
        while outcome.status is None:
            remaining = wall_s - (time.monotonic() - started)
            if remaining <= 0:
                outcome.killed = "wall"
                return
            for fd, _ in poller.poll(min(remaining, 1.0) * 1000):
                if fd == pidfd:
                    _, outcome.status, outcome.rusage = os.wait4(pid, 0)
                else:
                    _read(self.by_fd[fd])
                    if not self.by_fd[fd].open:
                        poller.unregister(fd)
            if _over(streams, ceiling):
                outcome.killed = "output"
                return


def _kill(pid: int) -> None:
    for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        try:
            target()
        except OSError:
            pass


def _drain(streams: list[Stream]) -> None:
    """Read what is left; every writer is dead by now, so each pipe reaches end of file."""
    for s in streams:
        if s.open:
            os.set_blocking(s.fd, True)
        while s.open:
            _read(s)


def _children_of(pid: int) -> list[int]:
    found = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                found += [int(p) for p in fh.read().split()]
    except OSError:
        pass
    return found


def descendants() -> list[int]:
    """Every living descendant of this process."""
    out, stack = [], [os.getpid()]
    while stack:
        for child in _children_of(stack.pop()):
            out.append(child)
            stack.append(child)
    return out


def _childless() -> bool:
    """True when this process has no child at all, living or zombie, and so no descendant: as a
    subreaper it inherits every orphan of its subtree before the orphan's parent can be reaped."""
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


def _reap_zombies() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def sweep(job_pid: int, own_pidns: bool) -> None:
    """Kill the (already reaped) job's process group and every other descendant of the server,
    until none is left."""
    try:
        os.killpg(job_pid, signal.SIGKILL)       # members that stayed in the job's group
    except OSError:
        pass
    for _ in range(1000):
        if own_pidns:
            try:
                os.kill(-1, signal.SIGKILL)
            except OSError:
                pass
        if _childless():
            return
        survivors = descendants()
        if not survivors:
            return
        for p in survivors:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.001)
        _reap_zombies()
