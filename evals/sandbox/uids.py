"""Unprivileged uids for sandbox workers, one per worker and unique across processes.

When the machine runs us as root, each worker's programs drop to their own uid: root ignores
``RLIMIT_NPROC``, and a shared uid would let one job's processes count against (or signal)
another's. A uid is held through an advisory lock on a file, released automatically when the
holding process exits, so concurrent test runs and compilers never pick the same one.
"""

from __future__ import annotations

import fcntl
import os
import tempfile

BASE_UID = 2_000_000
SLOTS = 4096


class UidLease:
    """One leased uid; call :meth:`release` (or let the process exit) to free it."""

    def __init__(self, uid: int, fd: int) -> None:
        self.uid, self._fd = uid, fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _lock_dir() -> str:
    path = os.path.join(tempfile.gettempdir(), "distillc-sandbox-uids")
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def lease() -> UidLease:
    """Lock the first free uid slot, starting from a pid-dependent offset to avoid contention."""
    directory = _lock_dir()
    start = (os.getpid() * 7919) % SLOTS
    for step in range(SLOTS):
        uid = BASE_UID + (start + step) % SLOTS
        fd = os.open(os.path.join(directory, f"{uid}.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return UidLease(uid, fd)
    raise RuntimeError("no free sandbox uid slot")
