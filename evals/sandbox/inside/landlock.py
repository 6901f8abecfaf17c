"""Landlock: an unprivileged kernel filesystem (and, from ABI 4, TCP) allowlist for the child.

The child may read and execute under the read-only paths, do anything inside its working
directory, and nothing else; from ABI 4 it can neither bind nor connect TCP sockets, and from
ABI 6 it cannot signal processes outside its own Landlock domain (so it cannot kill the fork
server even when it runs under the same uid). Landlock needs no privileges, only
``no_new_privs``, which :mod:`.confine` sets first.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct

_SYS_CREATE, _SYS_ADD_RULE, _SYS_RESTRICT = 444, 445, 446   # same numbers on x86_64 and aarch64
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1

_EXECUTE, _WRITE_FILE, _READ_FILE, _READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_TRUNCATE, _IOCTL_DEV = 1 << 14, 1 << 15
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1
_SCOPE_ABSTRACT_UNIX, _SCOPE_SIGNAL = 1 << 0, 1 << 1
_FILE_ONLY = _EXECUTE | _WRITE_FILE | _READ_FILE | _TRUNCATE | _IOCTL_DEV

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_NO_FLAGS = ctypes.c_uint32(0)


class LandlockError(OSError):
    """Landlock is missing or refused the ruleset."""


def abi_version() -> int:
    """The kernel's Landlock ABI version, 0 when Landlock is unavailable."""
    version = _libc.syscall(_SYS_CREATE, None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION))
    return max(int(version), 0)


def why_unavailable() -> str:
    """Why :func:`abi_version` is 0 here, in one line ("" when Landlock is available)."""
    if _libc.syscall(_SYS_CREATE, None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION)) >= 0:
        return ""
    code = ctypes.get_errno()
    hint = {errno.ENOSYS: " (a kernel without Landlock, or a container that filters the call)",
            errno.EOPNOTSUPP: " (Landlock is built in but not enabled: add it to the kernel's lsm= list)"}
    return f"landlock_create_ruleset: {os.strerror(code)}{hint.get(code, '')}"


def _handled_fs(abi: int) -> int:
    rights = (1 << 13) - 1              # ABI 1: execute .. make_sym
    if abi >= 2:
        rights |= 1 << 13               # refer
    if abi >= 3:
        rights |= _TRUNCATE
    if abi >= 5:
        rights |= _IOCTL_DEV
    return rights


def _ruleset_attr(abi: int) -> bytes:
    fs = _handled_fs(abi)
    net = (_NET_BIND_TCP | _NET_CONNECT_TCP) if abi >= 4 else 0
    scoped = (_SCOPE_ABSTRACT_UNIX | _SCOPE_SIGNAL) if abi >= 6 else 0
    if abi >= 6:
        return struct.pack("=QQQ", fs, net, scoped)
    if abi >= 4:
        return struct.pack("=QQ", fs, net)
    return struct.pack("=Q", fs)


def _add_path(ruleset_fd: int, path: str, access: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return                          # a path that does not exist needs no rule
    try:
        if not os.path.isdir(path):
            access &= _FILE_ONLY
        attr = ctypes.create_string_buffer(struct.pack("=Qi", access, fd))
        if _libc.syscall(_SYS_ADD_RULE, ruleset_fd, _RULE_PATH_BENEATH, attr, ctypes.c_uint32(0)) != 0:
            raise LandlockError(ctypes.get_errno(), f"landlock_add_rule({path})")
    finally:
        os.close(fd)


def build_ruleset(read_paths: list[str], write_paths: list[str], abi: int) -> int:
    """A ruleset fd granting read/execute under ``read_paths`` and full access under
    ``write_paths``; everything else this ABI handles is denied once a process restricts itself
    with it. Built once in the fork server and inherited by every child."""
    attr = _ruleset_attr(abi)
    buf = ctypes.create_string_buffer(attr)
    ruleset_fd = _libc.syscall(_SYS_CREATE, buf, ctypes.c_size_t(len(attr)), ctypes.c_uint32(0))
    if ruleset_fd < 0:
        raise LandlockError(ctypes.get_errno(), "landlock_create_ruleset")
    try:
        for path in read_paths:
            _add_path(ruleset_fd, path, _EXECUTE | _READ_FILE | _READ_DIR)
        for path in write_paths:
            _add_path(ruleset_fd, path, _handled_fs(abi))
    except BaseException:
        os.close(ruleset_fd)
        raise
    return int(ruleset_fd)


def restrict_self(ruleset_fd: int) -> None:
    """Confine the calling process with the ruleset (irreversible; needs no_new_privs)."""
    if _libc.syscall(_SYS_RESTRICT, ruleset_fd, _NO_FLAGS) != 0:
        raise LandlockError(ctypes.get_errno(), "landlock_restrict_self")
