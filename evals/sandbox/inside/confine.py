"""Confinement of one child, applied right after the fork and before any untrusted code runs.

Order matters: file descriptors and the working directory first, then resource limits, then
``no_new_privs``, Landlock, the uid drop and finally seccomp. Everything here is irreversible for
the child, and none of it can be undone by the program (hard limits equal soft limits, the uid has
no capabilities left, Landlock and seccomp cannot be lifted). The Landlock ruleset, the seccomp
program and the child's environment are prepared once in the fork server, so a child pays a few
system calls and as little Python as possible: every object a child touches costs it a
copy-on-write page fault, and every page it dirties costs it again at exit.
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
    """What to apply to every child; built once by the fork server from its start-up options.

    ``uid``: drop to this uid/gid (server running as root); ``ruleset_fd``: the Landlock ruleset
    prepared by the server; ``nproc``: RLIMIT_NPROC is meaningful (own uid or user namespace);
    ``close_range``: this interpreter's ``os.closerange`` uses close_range(2) (the kernel is
    probed here). ``null_fd`` is the server's descriptor on ``/dev/null``, every child's stdin.
    """

    def __init__(self, uid: int | None = None, ruleset_fd: int | None = None, seccomp: Filter | None = None,
                 nproc: bool = True, close_range: bool = False) -> None:
        self.uid, self.ruleset_fd, self.seccomp, self.nproc = uid, ruleset_fd, seccomp, nproc
        self.null_fd = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
        self.close_range = close_range and _close_range_works()


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


def wire_fds(null_fd: int, stdout_fd: int, stderr_fd: int, result_fd: int) -> None:
    """stdin from /dev/null (reads see end of file), stdout/stderr/result onto fds 1/2/3."""
    for src, dst in ((null_fd, 0), (stdout_fd, 1), (stderr_fd, 2), (result_fd, RESULT_FD)):
        os.dup2(src, dst)


_FD_CEILING = (1 << 31) - 1                # above every descriptor number
_SYS_CLOSE_RANGE = 436                    # same number on x86_64 and aarch64


def _close_range_works() -> bool:
    """Whether the kernel has close_range(2) (then ``os.closerange`` is one system call rather
    than a close per descriptor number)."""
    return _LIBC.syscall(_SYS_CLOSE_RANGE, _FD_CEILING, _FD_CEILING, 0) == 0


def close_inherited(close_range: bool = False) -> None:
    """Close every descriptor above the result pipe: with close_range(2) in one call, otherwise
    by listing them (far cheaper than closing the whole range one number at a time)."""
    if close_range:
        os.closerange(RESULT_FD + 1, _FD_CEILING)
        return
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
        fd = os.open("/proc/self/oom_score_adj", os.O_WRONLY)
    except OSError:
        return
    try:
        os.write(fd, b"1000")
    except OSError:
        pass
    finally:
        os.close(fd)


def enter(conf: Confinement, workdir: str, limits: dict) -> None:
    """Apply everything to the calling (freshly forked, fds already wired) process. The
    environment is the server's own, set for this job before the fork (see ``Server``)."""
    _first_to_go()
    os.chdir(workdir)
    apply_limits(limits, nproc=conf.nproc)
    no_new_privs()
    if conf.ruleset_fd is not None:
        landlock.restrict_self(conf.ruleset_fd)
    close_inherited(conf.close_range)
    if conf.uid is not None:
        drop_uid(conf.uid)
    if conf.seccomp is not None:
        conf.seccomp.install()
