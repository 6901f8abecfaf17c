"""One worker: a fork server process (at a given isolation level) and the pipes to it.

Servers are spawned from one long-lived thread: bubblewrap's ``--die-with-parent`` (and the
server's own parent-death signal) fire when the *thread* that forked them exits, so spawning from
a short-lived caller thread would kill the server with it.
"""

from __future__ import annotations

import concurrent.futures
import os
import select
import shutil
import subprocess
import tempfile
import threading
import time
from typing import NoReturn

from evals.sandbox import cgroups, launch, uids
from evals.sandbox.inside import protocol

_SPAWNER = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-spawner")


def _new_spawner_after_fork() -> None:
    global _SPAWNER
    _SPAWNER = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-spawner")


os.register_at_fork(after_in_child=_new_spawner_after_fork)
READY_TIMEOUT = 120.0
REPLY_MARGIN = 30.0


class WorkerError(RuntimeError):
    """The server could not start, or died / stopped answering during a job. ``reason`` is the
    gist in one line (what the server or bubblewrap said last, else what went wrong)."""

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason or one_line(message)


def one_line(text: str, limit: int = 300) -> str:
    """The last non-empty line of ``text``, shortened to ``limit`` characters."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    line = lines[-1] if lines else ""
    return line if len(line) <= limit else line[:limit - 3] + "..."


def _wait_readable(fd: int, timeout: float) -> bool:
    ready, _, _ = select.select([fd], [], [], max(timeout, 0.0))
    return bool(ready)


class Worker:
    """A fork server; :meth:`run` sends one job and returns the server's reply."""

    def __init__(self, level: str, memory_cap: int | None = None) -> None:
        self.level = level
        self.memory_cap = memory_cap or cgroups.worker_memory_cap(1)
        self.proc: subprocess.Popen | None = None
        self._cgroup: cgroups.WorkerCgroup | None = None
        self.features: dict = {}
        self._lease: uids.UidLease | None = None
        self._workroot: str | None = None
        self._log = None
        self._lock = threading.Lock()

    # ---- life cycle ---------------------------------------------------------------------
    def start(self) -> None:
        """Start the server and wait for its ``ready`` frame."""
        if launch.is_root() and self._lease is None:
            self._lease = uids.lease()
        uid = self._lease.uid if self._lease else None
        if self.level != "bwrap" and self._workroot is None:
            self._workroot = tempfile.mkdtemp(prefix="distillc-sandbox-", dir=launch.workroot())
            os.chmod(self._workroot, 0o711)
        command = launch.server_command(self.level, uid, self._workroot or launch.bwrap_workroot())
        self._log = tempfile.TemporaryFile()
        env = None if self.level == "bwrap" else launch.server_env()
        try:
            self.proc = _SPAWNER.submit(subprocess.Popen, command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self._log, env=env, close_fds=True).result()
        except OSError as exc:
            self.stop()
            raise WorkerError(f"the {self.level} sandbox server cannot be started: {exc}", str(exc)) from None
        self._handshake()

    def _handshake(self) -> None:
        try:
            if not _wait_readable(self.proc.stdout.fileno(), READY_TIMEOUT):
                raise WorkerError(f"the sandbox server did not start in {READY_TIMEOUT:.0f} s")
            ready = protocol.recv(self.proc.stdout.fileno())
        except (protocol.ProtocolError, OSError, WorkerError) as exc:
            log, reason = self.log_tail(), self._start_failure(exc)
            self.stop()
            raise WorkerError(f"the {self.level} sandbox server failed to start: {exc}; {log}", reason) from None
        self.features = ready.get("features", {})
        self._cap_tree()

    def _start_failure(self, exc: BaseException) -> str:
        """Why the server did not get ready, in one line: its (or bubblewrap's) last words, else
        how it ended."""
        said = one_line(self.log_tail())
        if said:
            return said
        try:
            status = self.proc.wait(timeout=1)
        except subprocess.TimeoutExpired:
            return one_line(str(exc))
        ended = f"killed by signal {-status}" if status < 0 else f"exited with status {status}"
        return f"{self.proc.args[0]} {ended} before the server was ready, saying nothing"

    def _cap_tree(self) -> None:
        """Put the server's process tree in its own memory/pids-capped cgroup, when possible."""
        self._cgroup = cgroups.WorkerCgroup(f"{cgroups.PREFIX}{os.getpid()}-{id(self):x}", self.memory_cap)
        self.features["cgroup"] = self._cgroup.adopt(cgroups.process_tree(self.proc.pid))
        if not self.features["cgroup"]:
            self.features.setdefault("why_not", {})["cgroup"] = self._cgroup.why_not

    def log_tail(self, limit: int = 2000) -> str:
        if self._log is None:
            return ""
        try:
            self._log.seek(0)
            return self._log.read().decode("utf-8", "replace")[-limit:].strip()
        except (OSError, ValueError):
            return ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """Stop the server (and, through bubblewrap or the sweep, anything it ran)."""
        proc, self.proc = self.proc, None
        if proc is not None:
            try:
                protocol.send(proc.stdin.fileno(), {"op": "exit"})
                proc.wait(timeout=2)
            except (OSError, protocol.ProtocolError, subprocess.TimeoutExpired, ValueError):
                proc.kill()
                proc.wait()
            for stream in (proc.stdin, proc.stdout):
                stream.close()
        if self._cgroup is not None:
            self._cgroup.remove()
            self._cgroup = None
        if self._workroot:
            shutil.rmtree(self._workroot, ignore_errors=True)
            self._workroot = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def close(self) -> None:
        self.stop()
        if self._lease is not None:
            self._lease.release()
            self._lease = None

    # ---- jobs ---------------------------------------------------------------------------
    def submit(self, job: dict) -> None:
        """Queue one job on the server (starting it if needed); jobs run in submission order and
        :meth:`collect` returns their replies in the same order."""
        if not self.alive():
            self.stop()
            self.start()
        try:
            protocol.send(self.proc.stdin.fileno(), {"op": "run", "job": job})
        except (protocol.ProtocolError, OSError) as exc:
            self._lost(exc)

    def collect(self, job: dict) -> dict:
        """The reply to the oldest submitted job (``job``), which has started by now."""
        started = time.monotonic()
        try:
            if not _wait_readable(self.proc.stdout.fileno(), float(job["wall_seconds"]) + REPLY_MARGIN):
                raise WorkerError(f"no reply from the sandbox server after {time.monotonic() - started:.0f} s")
            return protocol.recv(self.proc.stdout.fileno())
        except (protocol.ProtocolError, OSError, WorkerError) as exc:
            self._lost(exc)

    def fileno(self) -> int:
        """The descriptor replies arrive on (readable when one is there)."""
        return self.proc.stdout.fileno()

    def receive(self) -> dict:
        """The reply to the oldest submitted job, once :meth:`fileno` is readable."""
        try:
            return protocol.recv(self.proc.stdout.fileno())
        except (protocol.ProtocolError, OSError) as exc:
            self._lost(exc)

    def abandon(self, waited: float) -> NoReturn:
        """Give up on a server that has not answered for ``waited`` seconds."""
        self._lost(WorkerError(f"no reply from the sandbox server after {waited:.0f} s"))

    def run(self, job: dict) -> dict:
        """Send one job and wait for its reply. Raises :class:`WorkerError` if the server dies or
        stops answering (it is then restarted on next use)."""
        with self._lock:
            self.submit(job)
            return self.collect(job)

    def _lost(self, exc: BaseException) -> NoReturn:
        log = self.log_tail()
        self.stop()
        raise WorkerError(f"sandbox server lost during a job: {exc}; {log}") from None
