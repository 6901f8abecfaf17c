"""A small seccomp-BPF deny-list for the child: no network sockets, no namespaces, no tracing.

Everything not listed is allowed: the filter is a second line behind the namespaces and the uid
drop, aimed at what a test program never needs. Denied calls fail with ``EPERM`` (so the program
sees an ordinary ``PermissionError``); a foreign syscall ABI (x32, i386 on x86_64) kills the
process. Installing a filter needs only ``no_new_privs``.
"""

from __future__ import annotations

import ctypes
import errno
import platform
import struct

_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 22, 2
_RET_ALLOW, _RET_KILL_PROCESS, _RET_ERRNO = 0x7FFF0000, 0x80000000, 0x00050000
_LD_W_ABS, _JEQ_K, _JGE_K, _JSET_K, _RET_K = 0x20, 0x15, 0x35, 0x45, 0x06
_OFF_NR, _OFF_ARCH, _OFF_ARG0 = 0, 4, 16
_AF_UNIX = 1
_CLONE_NS_FLAGS = 0x00020000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x02000000

# name -> (x86_64 number, aarch64 number)
_DENIED = {
    "ptrace": (101, 117), "process_vm_readv": (310, 270), "process_vm_writev": (311, 271),
    "mount": (165, 40), "umount2": (166, 39), "pivot_root": (155, 41), "unshare": (272, 97),
    "setns": (308, 268), "bpf": (321, 280), "perf_event_open": (298, 241), "keyctl": (250, 219),
    "add_key": (248, 217), "request_key": (249, 218), "userfaultfd": (323, 282),
    "io_uring_setup": (425, 425), "io_uring_enter": (426, 426), "io_uring_register": (427, 427),
    "kexec_load": (246, 104), "init_module": (175, 105), "finit_module": (313, 273),
    "reboot": (169, 142), "swapon": (167, 224), "swapoff": (168, 225), "acct": (163, 89),
}
_SOCKET = (41, 198)
_SOCKETPAIR = (53, 199)
_CLONE = (56, 220)
_CLONE3 = (435, 435)
_ARCHES = {"x86_64": (0xC000003E, 0), "aarch64": (0xC00000B7, 1)}


class SeccompError(OSError):
    """The filter could not be installed."""


def supported() -> bool:
    """True on the architectures this filter knows the syscall numbers of."""
    return platform.machine() in _ARCHES


def why_unsupported() -> str:
    """Why :func:`supported` is False here ("" when it is True)."""
    return "" if supported() else f"no syscall numbers for this architecture ({platform.machine()})"


def _stmt(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k & 0xFFFFFFFF)


def _program(arch_id: int, column: int, x86: bool) -> list[bytes]:
    deny = _RET_ERRNO | errno.EPERM
    prog = [_stmt(_LD_W_ABS, _OFF_ARCH), _stmt(_JEQ_K, arch_id, 1, 0), _stmt(_RET_K, _RET_KILL_PROCESS),
            _stmt(_LD_W_ABS, _OFF_NR)]
    if x86:                                   # x32 ABI numbers have bit 30 set
        prog += [_stmt(_JGE_K, 0x40000000, 0, 1), _stmt(_RET_K, _RET_KILL_PROCESS)]
    for numbers in _DENIED.values():
        prog += [_stmt(_JEQ_K, numbers[column], 0, 1), _stmt(_RET_K, deny)]
    prog += [_stmt(_JEQ_K, _CLONE3[column], 0, 1), _stmt(_RET_K, _RET_ERRNO | errno.ENOSYS)]
    for numbers in (_SOCKET, _SOCKETPAIR):    # only AF_UNIX sockets
        prog += [_stmt(_JEQ_K, numbers[column], 0, 4), _stmt(_LD_W_ABS, _OFF_ARG0),
                 _stmt(_JEQ_K, _AF_UNIX, 0, 1), _stmt(_RET_K, _RET_ALLOW), _stmt(_RET_K, deny)]
    prog += [_stmt(_JEQ_K, _CLONE[column], 0, 3), _stmt(_LD_W_ABS, _OFF_ARG0),
             _stmt(_JSET_K, _CLONE_NS_FLAGS, 0, 1), _stmt(_RET_K, deny)]
    prog.append(_stmt(_RET_K, _RET_ALLOW))
    return prog


class _FProg(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


class Filter:
    """The compiled filter for this machine, built once (in the fork server) and installed by
    each child with a single ``prctl``."""

    def __init__(self) -> None:
        machine = platform.machine()
        if machine not in _ARCHES:
            raise SeccompError(errno.ENOSYS, f"no seccomp filter for {machine}")
        arch_id, column = _ARCHES[machine]
        instructions = _program(arch_id, column, machine == "x86_64")
        self._buf = ctypes.create_string_buffer(b"".join(instructions))
        self._prog = _FProg(len(instructions), ctypes.cast(self._buf, ctypes.c_void_p))
        # resolved here, in the server: a child then only makes the call
        self._prctl = ctypes.CDLL(None, use_errno=True).prctl
        self._prog_ref = ctypes.byref(self._prog)

    def install(self) -> None:
        """Install on the calling thread and its future children (irreversible)."""
        if self._prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, self._prog_ref, 0, 0) != 0:
            raise SeccompError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP)")
