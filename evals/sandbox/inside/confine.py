"""Confinement of one child, applied right after the fork and before any untrusted code runs.

Order matters: file descriptors and the working directory first, then resource limits, then
``no_new_privs``, Landlock, the uid drop and finally seccomp. Everything here is irreversible for
the child, and none of it can be undone by the program (hard limits equal soft limits, the uid has
no capabilities left, Landlock and seccomp cannot be lifted). The Landlock ruleset and the seccomp
program are prepared once in the fork server, so a child pays a few system calls.
"""

from __future__ import annotations

import ctypes
import math
import os
import resource

from . import landlock
from .seccomp import Filter

_PR_SET_NO_NEW_PRIVS = 38
_LIBC = ctypes.CDLL(None, use_errno=True)
RESULT_FD = 3


class Confinement:
    """What to apply to a child; built by the server from its start-up options and the job.

    ``uid``: drop to this uid/gid (server running as root); ``ruleset_fd``: the Landlock ruleset
    prepared by the server; ``nproc``: RLIMIT_NPROC is meaningful (own uid or user namespace).
    """

    def __init__(self, workdir: str, uid: int | None = None, ruleset_fd: int | None = None,
                 seccomp: Filter | None = None, env: dict[str, str] | None = None, nproc: bool = True) -> None:
        self.workdir, self.uid, self.ruleset_fd, self.seccomp = workdir, uid, ruleset_fd, seccomp
        self.env, self.nproc = env or {}, nproc


def _rlimit(which: int, value: int) -> None:
    value = max(int(value), 0)
    try:
        resource.setrlimit(which, (value, value))
    except (ValueError, OSError):
        _, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            resource.setrlimit(which, (min(value, hard), min(value, hard)))


def apply_limits(limits: dict, *, nproc: bool) -> None:
    """Resource limits from a ``Limits`` dict (CPU seconds rounded up; the kernel counts whole
    seconds). ``nproc`` is skipped where the count would include unrelated processes of the uid."""
    cpu = max(1, math.ceil(float(limits["cpu_seconds"])))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    _rlimit(resource.RLIMIT_AS, int(limits["memory_mb"]) << 20)
    _rlimit(resource.RLIMIT_FSIZE, int(limits["max_file_mb"]) << 20)
    _rlimit(resource.RLIMIT_NOFILE, int(limits["max_open_files"]))
    _rlimit(resource.RLIMIT_CORE, 0)
    _rlimit(resource.RLIMIT_MEMLOCK, 0)
    if nproc:
        _rlimit(resource.RLIMIT_NPROC, int(limits["max_processes"]))


def wire_fds(stdout_fd: int, stderr_fd: int, result_fd: int) -> None:
    """stdin from /dev/null (reads see end of file), stdout/stderr/result onto fds 1/2/3."""
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    for src, dst in ((stdout_fd, 1), (stderr_fd, 2), (result_fd, RESULT_FD)):
        os.dup2(src, dst)


def close_inherited() -> None:
    """Close every descriptor above the result pipe (listing them is far cheaper than closing
    the whole range)."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > RESULT_FD:
            try:
                os.close(fd)
            except OSError:
                pass


def no_new_privs() -> None:
    if _LIBC.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")


def drop_uid(uid: int) -> None:
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    if os.getuid() != uid or os.geteuid() != uid:
        raise OSError("uid drop did not take effect")


def _first_to_go() -> None:
    """Volunteer as the out-of-memory killer's first victim (a worker's cgroup cap is shared by
    the fork server and the job; raising one's own score needs no privilege)."""
    try:
        with open("/proc/self/oom_score_adj", "w") as fh:
            fh.write("1000")
    except OSError:
        pass


def enter(conf: Confinement, limits: dict) -> None:
    """Apply everything to the calling (freshly forked, fds already wired) process."""
    _first_to_go()
    os.chdir(conf.workdir)
    os.environ.clear()
    os.environ.update(conf.env)
    apply_limits(limits, nproc=conf.nproc)
    no_new_privs()
    if conf.ruleset_fd is not None:
        landlock.restrict_self(conf.ruleset_fd)
    close_inherited()
    if conf.uid is not None:
        drop_uid(conf.uid)
    if conf.seccomp is not None:
        conf.seccomp.install()
