"""A memory and process cap per worker, through cgroups, where this process may create them.

Each job is limited per process (address space, process count), but a job can combine the two:
16 processes of 1 GiB each. To keep the machine safe from that, each worker's process tree (its
fork server and every job) is put in its own cgroup, nested under this process's own cgroup, with
a memory cap and a pids cap; the kernel's out-of-memory killer then acts inside the worker only
(job processes volunteer as its first victims). Nothing is changed outside the nested groups.
Supported: cgroup v1 ``memory``/``pids`` hierarchies, and cgroup v2 when this process's group
already delegates those controllers. Silently absent elsewhere (the result's isolation string says
whether ``cgroup`` applied).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
PREFIX = "distillc-sandbox-"
PIDS_MAX = 1024
_ENV_CAP = "DISTILLC_SANDBOX_WORKER_MEMORY_MB"


def _own_paths() -> dict[str, str]:
    """controller (or "" for v2) -> this process's cgroup path."""
    paths = {}
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for name in controllers.split(",") if controllers else [""]:
                paths[name] = path
    except OSError:
        pass
    return paths


def _total_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 8 << 30


def worker_memory_cap(workers: int) -> int:
    """Bytes a worker's tree may use: 60% of the machine shared by the workers, at least 2 GiB
    (``$DISTILLC_SANDBOX_WORKER_MEMORY_MB`` overrides)."""
    if os.environ.get(_ENV_CAP):
        return int(os.environ[_ENV_CAP]) << 20
    return max(2 << 30, int(0.6 * _total_memory()) // max(workers, 1))


class WorkerCgroup:
    """The nested cgroup(s) of one worker; :meth:`adopt` moves processes in."""

    def __init__(self, name: str, memory_bytes: int) -> None:
        self.dirs: list[Path] = []
        self.why_not = ""                               # why there is no group, in one line
        own = _own_paths()
        for controller, limit_file, value in (("memory", "memory.limit_in_bytes", memory_bytes),
                                              ("pids", "pids.max", PIDS_MAX)):
            if controller in own:
                self._make(ROOT / controller / own[controller].lstrip("/") / name, limit_file, value)
        if not self.dirs and "" in own:
            self._make_v2(ROOT / own[""].lstrip("/"), name, memory_bytes)
        if not self.dirs and not self.why_not:
            self.why_not = "this process has no memory or pids cgroup controller (see /proc/self/cgroup)"

    def _make(self, path: Path, limit_file: str, value: int) -> None:
        remove_stale(path.parent)
        try:
            path.mkdir(exist_ok=True)
            (path / limit_file).write_text(str(value))
        except OSError as exc:
            self.why_not = f"cannot create {path}: {exc.strerror or exc}"
            return
        self.dirs.append(path)

    def _make_v2(self, parent: Path, name: str, memory_bytes: int) -> None:
        try:
            delegated = (parent / "cgroup.subtree_control").read_text().split()
        except OSError as exc:
            self.why_not = f"cannot read {parent / 'cgroup.subtree_control'}: {exc.strerror or exc}"
            return
        if "memory" not in delegated:
            self.why_not = (f"cgroup v2: the memory controller is not delegated to {parent} "
                            f"(cgroup.subtree_control: {' '.join(delegated) or 'empty'})")
        else:
            path = parent / name
            self._make(path, "memory.max", memory_bytes)
            if "pids" in delegated and path in self.dirs:
                try:
                    (path / "pids.max").write_text(str(PIDS_MAX))
                except OSError:
                    pass

    @property
    def active(self) -> bool:
        return bool(self.dirs)

    def adopt(self, pids: list[int]) -> bool:
        """Move ``pids`` into every group; False if any move failed."""
        ok = True
        for path in self.dirs:
            for pid in pids:
                try:
                    (path / "cgroup.procs").write_text(str(pid))
                except OSError as exc:
                    ok, self.why_not = False, f"cannot move the worker into {path}: {exc.strerror or exc}"
        return ok and self.active

    def remove(self, wait_s: float = 2.0) -> None:
        """Remove the groups once their processes are gone (waiting up to ``wait_s``)."""
        deadline = time.monotonic() + wait_s
        for path in self.dirs:
            while _members(path) and time.monotonic() < deadline:
                time.sleep(0.01)
            _rmdir(path)
        self.dirs = []


def _members(path: Path) -> list[str]:
    try:
        return (path / "cgroup.procs").read_text().split()
    except OSError:
        return []


def _rmdir(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass


def remove_stale(parent: Path) -> None:
    """Remove empty groups left by sandbox processes that no longer exist."""
    try:
        entries = list(parent.glob(f"{PREFIX}*"))
    except OSError:
        return
    for path in entries:
        owner = path.name[len(PREFIX):].split("-")[0]
        if owner.isdigit() and not os.path.exists(f"/proc/{owner}") and not _members(path):
            _rmdir(path)


def process_tree(pid: int) -> list[int]:
    """``pid`` and its living descendants."""
    out, stack = [], [pid]
    while stack:
        current = stack.pop()
        out.append(current)
        try:
            for tid in os.listdir(f"/proc/{current}/task"):
                stack += [int(c) for c in Path(f"/proc/{current}/task/{tid}/children").read_text().split()]
        except OSError:
            continue
    return out
