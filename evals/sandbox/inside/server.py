"""The warm fork server. It starts once per worker (inside bubblewrap when available), imports
the common modules, snapshots them, then for every job forks a child that confines itself and
runs the harness, while the server watches it, sweeps whatever it left and removes its working
directory.

Start-up options arrive as one JSON argument; jobs and results are frames on the two descriptors
given there (see :mod:`.protocol`). The server is trusted code: it never runs the program itself.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import signal
import stat
import sys

from . import confine, guard, harness, landlock, protocol, seccomp, supervise
from .styles import STYLES

_PR_SET_PDEATHSIG, _PR_SET_CHILD_SUBREAPER = 1, 36
# Imported once in the server so that children start warm. Inside bubblewrap the children can
# import anything else themselves, and every preloaded extension module makes each fork and exit
# dearer (more mappings to copy and tear down), so the list is short: PERsD's preamble (numpy is
# bound lazily, see harness.PERSD_PREAMBLE) and what tests use most. Without bubblewrap, a child
# under a dropped uid may be unable to read the interpreter's own directory (a private /root), so
# the full list is preloaded there.
LEAN_PRELOAD = ("math", "re", "itertools", "functools", "collections", "heapq", "bisect", "string", "typing",
                "random", "copy", "json", "operator", "fractions", "time")
FULL_PRELOAD = LEAN_PRELOAD + (
    "numpy", "decimal", "cmath", "statistics", "datetime", "array", "hashlib", "subprocess", "unicodedata",
    "textwrap", "dataclasses", "enum", "abc", "io", "struct", "calendar", "pprint", "queue", "types", "numbers",
    "contextlib", "socket", "threading", "signal", "glob", "pathlib", "tempfile", "shutil", "csv", "base64",
    "binascii", "zlib", "uuid", "locale", "difflib", "weakref", "ast", "inspect", "traceback", "warnings",
    "collections.abc", "encodings.idna", "encodings.punycode", "encodings.ascii", "encodings.latin_1",
    "encodings.utf_16", "encodings.utf_32", "encodings.cp1252", "encodings.unicode_escape",
    "encodings.raw_unicode_escape")
TRUNCATED = "\n[... {n} more bytes truncated by the sandbox]"


def _prctl(option: int, value: int) -> None:
    confine._LIBC.prctl(option, value, 0, 0, 0)


def _preload(names: tuple[str, ...]) -> None:
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError:
            pass


class Server:
    def __init__(self, options: dict) -> None:
        self.options = options
        self.in_fd, self.out_fd = options["in_fd"], options["out_fd"]
        self.workroot = options["workroot"]
        self.uid = options.get("uid")
        self.features = {"uid": self.uid is not None, "landlock": 0, "seccomp": False}

    # ---- start-up -------------------------------------------------------------------------
    def start(self) -> None:
        _prctl(_PR_SET_CHILD_SUBREAPER, 1)
        if not self.options.get("own_pidns"):
            _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        sys.dont_write_bytecode = True
        os.makedirs(self.workroot, exist_ok=True)
        os.environ.clear()                                  # the children's environment, once
        os.environ.update(self.options.get("child_env") or {})
        self._reserve = [bytes(1 << 20)]                    # see harness.Reporter (calloc: untouched)
        _preload(FULL_PRELOAD if self.options.get("preload") == "full" else LEAN_PRELOAD)
        self.snapshot = guard.Snapshot()
        self._probe_features()
        gc.collect()
        gc.freeze()
        protocol.send(self.out_fd, {"op": "ready", "python": sys.version.split()[0], "pid": os.getpid(),
                                    "features": self.features})

    def _probe_features(self) -> None:
        """Prepare each optional mechanism and try it in a throwaway child; keep what works, and
        say why for what was asked for and does not (``features["why_not"]``, one line each)."""
        self.ruleset_fd, self.filter, why_not = None, None, {}
        if self.options.get("landlock"):
            why_not["landlock"] = self._probe_landlock()
        if self.options.get("seccomp"):
            candidate = seccomp.Filter() if seccomp.supported() else None
            why_not["seccomp"] = self._probe(candidate.install) if candidate else seccomp.why_unsupported()
            if not why_not["seccomp"]:
                self.filter, self.features["seccomp"] = candidate, True
        if self.uid is not None:
            why_not["uid"] = self._probe(lambda: confine.drop_uid(self.uid))
            if why_not["uid"]:
                self.features["uid"], self.uid = False, None
        self.features["why_not"] = {name: why for name, why in why_not.items() if why}
        self.confinement = confine.Confinement(uid=self.uid, ruleset_fd=self.ruleset_fd, seccomp=self.filter,
                                               nproc=self.options.get("nproc", self.uid is not None),
                                               close_range=bool(self.options.get("close_range")))

    def _probe_landlock(self) -> str:
        """Build the ruleset and try it; "" when it works, else why not."""
        abi = landlock.abi_version()
        if not abi:
            return landlock.why_unavailable() or "Landlock reports no ABI version"
        try:
            fd = landlock.build_ruleset(self._read_paths(), [self.workroot, "/dev/null"], abi)
        except OSError as exc:
            return f"the ruleset cannot be built: {exc}"
        why = self._probe(lambda: landlock.restrict_self(fd))
        if why:
            os.close(fd)
        else:
            self.ruleset_fd, self.features["landlock"] = fd, abi
        return why

    def _probe(self, action) -> str:
        """Run ``action`` in a throwaway child; "" when it worked, else what it raised."""
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            try:
                confine.no_new_privs()
                action()
                os._exit(0)
            except BaseException as exc:                    # noqa: BLE001
                os.write(write, f"{type(exc).__name__}: {exc}"[:300].encode("utf-8", "replace"))
                os._exit(1)
        os.close(write)
        _, status = os.waitpid(pid, 0)
        said = os.read(read, 2048).decode("utf-8", "replace")
        os.close(read)
        code = os.waitstatus_to_exitcode(status)
        return "" if code == 0 else (said or f"the probe ended with status {code}")

    def _read_paths(self) -> list[str]:
        return list(self.options.get("read_paths") or [])

    # ---- jobs -----------------------------------------------------------------------------
    def serve(self) -> None:
        while True:
            try:
                message = protocol.recv(self.in_fd)
            except protocol.ProtocolError:
                return
            if message.get("op") == "exit":
                return
            protocol.send(self.out_fd, self.run_job(message["job"]))

    def _workdir(self) -> str:
        """A fresh job directory, also the child's ``HOME`` and ``TMPDIR``: they are set in the
        server's own environment (the children's, see ``start``), which the child inherits."""
        path = os.path.join(self.workroot, "job-" + os.urandom(4).hex())
        os.mkdir(path, 0o700)
        if self.uid is not None:
            os.chown(path, self.uid, self.uid)
        os.environ["HOME"] = os.environ["TMPDIR"] = path
        return path

    def run_job(self, job: dict) -> dict:
        harness.prepare(job)
        workdir = self._workdir()
        pipes = [os.pipe2(os.O_CLOEXEC) for _ in range(3)]
        limits = job["limits"]
        cap = int(limits["max_output_bytes"])
        streams = [supervise.Stream(r, cap if i < 2 else protocol.MAX_FRAME // 4) for i, (r, _) in enumerate(pipes)]
        ceiling = max(cap, int(limits["max_file_mb"]) << 20)
        watch = supervise.Watch(streams, tuple(w for _, w in pipes), float(job["wall_seconds"]), ceiling,
                                bool(self.options.get("own_pidns")))
        pid = os.fork()
        if pid == 0:
            self._child(job, workdir, pipes)
        outcome = watch.run(pid)
        for stream in streams:
            os.close(stream.fd)
        _remove_tree(workdir)
        return self._reply(pid, outcome, streams)

    def _child(self, job: dict, workdir: str, pipes: list) -> None:
        try:
            confine.wire_fds(self.confinement.null_fd, pipes[0][1], pipes[1][1], pipes[2][1])
            confine.enter(self.confinement, workdir, job["limits"])
        except BaseException as exc:                        # noqa: BLE001
            os.write(confine.RESULT_FD, (f'{{"ev":"confine","pid":{os.getpid()},"msg":{exc!r:.200}}}\n').encode())
            os._exit(71)
        gc.freeze()                                         # the collector skips inherited objects
        try:
            harness.run(job, self.snapshot, STYLES, self._reserve)
        except BaseException as exc:                        # noqa: BLE001 - a harness fault
            os.write(confine.RESULT_FD, (json.dumps({"ev": "internal", "pid": os.getpid(),
                                                     "msg": repr(exc)[:500]}) + "\n").encode())
            os._exit(70)
        os._exit(0)

    def _reply(self, pid: int, outcome: supervise.Outcome, streams: list) -> dict:
        status = outcome.status or 0
        usage = outcome.rusage
        return {
            "op": "result",
            "events": _events(streams[2].kept, pid),
            "stdout": _text(streams[0]), "stderr": _text(streams[1]),
            "stdout_bytes": streams[0].total, "stderr_bytes": streams[1].total,
            "exit_code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
            "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
            "cpu_s": (usage.ru_utime + usage.ru_stime) if usage else 0.0,
            "maxrss_kb": usage.ru_maxrss if usage else 0,
            "wall_s": outcome.wall_s, "killed": outcome.killed,
        }


def _text(stream: supervise.Stream) -> str:
    text = bytes(stream.kept).decode("utf-8", "replace")
    extra = stream.total - len(stream.kept)
    return text + TRUNCATED.format(n=extra) if extra > 0 else text


def _events(raw: bytearray, pid: int) -> list[dict]:
    """Parse the child's JSON lines, keeping only those the job process itself wrote."""
    events = []
    for line in bytes(raw).split(b"\n"):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("pid") == pid:
            events.append(event)
        if len(events) > 100_000:
            break
    return events


def _remove_tree(path: str) -> None:
    """Remove a job's directory, even if the program made parts of it unreadable (the server
    avoids ``shutil``: its compression imports would make every fork dearer). Most jobs leave it
    empty: one ``rmdir`` then does."""
    try:
        os.rmdir(path)
        return
    except OSError:
        pass
    _remove_contents(path)


def _remove_contents(path: str) -> None:
    try:
        os.chmod(path, stat.S_IRWXU, follow_symlinks=False)
        entries = list(os.scandir(path))
    except OSError:
        entries = []
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                _remove_contents(entry.path)
            else:
                os.unlink(entry.path)
        except OSError:
            pass
    try:
        os.rmdir(path)
    except OSError:
        pass


def _protocol_fds() -> tuple[int, int]:
    """Move the parent's pipes off fds 0/1 so that stray prints cannot corrupt the protocol."""
    in_fd, out_fd = os.dup(0), os.dup(1)
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(2, 1)
    os.close(null)
    return in_fd, out_fd


def main(options_json: str) -> None:
    options = json.loads(options_json)
    options["in_fd"], options["out_fd"] = _protocol_fds()
    server = Server(options)
    server.start()
    server.serve()
