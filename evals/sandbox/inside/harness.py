"""The child's side of a job: load the program, run the style's tests, report events.

Events are JSON lines on fd 3, each stamped with the reporting pid (the server keeps only the
job process's own lines, so a forked copy of the harness cannot add results). A job that ends
without its final ``done`` event (the program called ``os._exit``, was killed, or hung) never
counts as passed: the verdict is taken by the parent from these events, not from the exit code.
"""

from __future__ import annotations

import builtins
import io
import json
import os
import sys
import types

from . import guard
from .confine import RESULT_FD

_MAX_TEXT = 4000
_write, _getpid, _dumps = os.write, os.getpid, json.dumps
_encode = json.JSONEncoder(ensure_ascii=False, default=repr).encode   # built once, in the server
_BaseException, _SystemExit, _str, _type = BaseException, SystemExit, str, type

# PERsD's fixed import preamble for input/output tests (names available to the program). ``np``
# is bound to numpy itself when the server preloaded it, otherwise to a module that imports numpy
# on first use, so that programs which never touch it do not pay for importing it.
PERSD_PREAMBLE = """\
import sys
import time
import itertools
from itertools import accumulate, product, permutations, combinations
import collections
from collections import Counter, OrderedDict, deque, defaultdict, ChainMap
from functools import lru_cache
import math
from math import sqrt, sin, cos, tan, ceil, fabs, floor, gcd, exp, log, log2
import fractions
from typing import List, Tuple
import random
import heapq
from heapq import *
"""


def clip(text: str, limit: int = _MAX_TEXT) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def describe(exc: BaseException) -> dict:
    """``{"type", "msg"}`` of an exception, robust to hostile ``__str__``."""
    try:
        msg = _str(exc)
    except _BaseException:                      # noqa: BLE001
        msg = "<unprintable message>"
    info = {"type": _type(exc).__name__, "msg": clip(msg)}
    errno = getattr(exc, "errno", None) if isinstance(exc, OSError) else None
    if isinstance(errno, int):
        info["errno"] = errno
    return info


class Reporter:
    """Writes events for the parent; ``done`` carries the job's nonce."""

    def __init__(self, nonce: str, reserve: list) -> None:
        self._nonce = nonce
        # Memory released on MemoryError so that reporting still works: a list holding the only
        # reference to a buffer the fork server allocated once (a child inherits it untouched,
        # so it costs no page faults, yet counts against the child's RLIMIT_AS until released).
        self._reserve = reserve

    def emit(self, event: dict) -> None:
        event["pid"] = _getpid()
        try:
            line = _encode(event)
        except _BaseException:                  # noqa: BLE001
            line = _dumps({"ev": "error", "type": "ReportError", "msg": "unencodable event", "pid": _getpid()})
        data = (line + "\n").encode("utf-8", "replace")
        while data:
            data = data[_write(RESULT_FD, data):]

    def error(self, exc: BaseException, where: str, index: int | None = None) -> None:
        if isinstance(exc, MemoryError):
            self._reserve.clear()
        self.emit({"ev": "error", "where": where, "i": index, **describe(exc)})

    def done(self) -> None:
        self.emit({"ev": "done", "nonce": self._nonce})


class _LazyNumpy(types.ModuleType):
    """``np`` before numpy is imported: the first attribute access imports it."""

    def __getattr__(self, name: str):
        import numpy
        return getattr(numpy, name)


def bind_numpy(namespace: dict) -> None:
    namespace["np"] = sys.modules.get("numpy") or _LazyNumpy("numpy")


class Context:
    """What a style needs: the payload, the reporter, the pristine snapshot and a recorder."""

    def __init__(self, payload: dict, reporter: Reporter, snapshot: guard.Snapshot) -> None:
        self.payload = payload
        self.reporter = reporter
        self.snapshot = snapshot
        self.recorder = snapshot.recorder
        self.test_imports: set[str] = set()

    def load_program(self, name: str = "__solution__", preamble: str = "") -> dict | None:
        """Compile and run the program's top level; report and return None on failure."""
        code = self.payload["code"]
        try:
            compiled = compile(code, "<program>", "exec")
        except (SyntaxError, ValueError, OverflowError, RecursionError, MemoryError) as exc:
            self.reporter.emit({"ev": "syntax", **describe(exc), "line": getattr(exc, "lineno", None)})
            return None
        namespace = {"__name__": name, "__builtins__": builtins}
        try:
            if preamble:
                exec(compile(preamble, "<preamble>", "exec"), namespace)
                bind_numpy(namespace)
            exec(compiled, namespace)
        except _BaseException as exc:           # noqa: BLE001 - everything the program raises
            if name == "__main__" and _is_clean_exit(exc):
                return namespace
            self.reporter.error(exc, "program")
            return None
        return namespace

    def test_namespace(self, program: dict) -> dict:
        """A copy of the program's globals with pristine builtins (patching the common modules
        is caught afterwards by :meth:`tampered`)."""
        names = dict(program)
        names["__builtins__"] = self.snapshot.test_builtins
        names["__name__"] = "__tests__"
        return names

    def tampered(self, test_names: dict) -> bool:
        """Report (and return True) if protected state the tests can see was changed."""
        modules = guard.visible_modules(test_names, self.test_imports)
        what = self.snapshot.changed(test_names.get("__builtins__"), modules)
        if what:
            self.reporter.emit({"ev": "tamper", "what": what})
        return bool(what)

    def run_rewritten(self, source: str, names: dict, filename: str) -> list[dict]:
        """Execute test source with its asserts routed through the recorder."""
        compiled, asserts, imports = guard.rewrite_asserts(source, filename)
        self.current_asserts = asserts
        self.test_imports |= imports
        exec(compiled, names)
        return asserts

    def assertion_detail(self) -> dict:
        """For the assert that just failed: its source and, for ``assert f(x) == y``, what
        ``f(x)`` returned (repr) and the expected expression."""
        asserts = getattr(self, "current_asserts", [])
        index = self.recorder.failed_assert
        if index is None or index >= len(asserts):
            return {}
        info = dict(asserts[index])
        last = self.recorder.last
        if info.get("call") and last and last[0] == index:
            info["output"] = clip(_safe_repr(last[1][0]))
        return info


def _safe_repr(value) -> str:
    try:
        return repr(value)
    except _BaseException as exc:               # noqa: BLE001
        return f"<unrepresentable: {_type(exc).__name__}>"


def _is_clean_exit(exc: BaseException) -> bool:
    return isinstance(exc, _SystemExit) and exc.code in (None, 0)


class Capture:
    """Temporarily send ``sys.stdout`` to a buffer (PERsD reads printed output as the result of
    a function that returns None), echoing it to the real stdout afterwards."""

    def __enter__(self) -> "Capture":
        self.saved, self.buffer = sys.stdout, io.StringIO()
        sys.stdout = self.buffer
        return self

    def __exit__(self, *exc) -> None:
        sys.stdout = self.saved
        self.text = self.buffer.getvalue()
        try:
            self.saved.write(self.text)
        except _BaseException:                  # noqa: BLE001
            pass


def prepare(payload: dict) -> None:
    """In the fork server, before forking: compile the job's test code (cached by source), so
    that children inherit it ready-made. Broken test code is left for the child to report."""
    if payload.get("style") not in ("humaneval", "mbpp"):
        return
    sources = [(case["code"], f"<test {i}>") for i, case in enumerate(payload.get("cases") or [])]
    sources += [(payload[key], f"<{key}>") for key in ("check", "setup") if payload.get(key)]
    for source, filename in sources:
        try:
            guard.rewrite_asserts(source, filename)
        except Exception:                       # noqa: BLE001 - the child reports it
            pass


def run(payload: dict, snapshot: guard.Snapshot, styles: dict[str, types.ModuleType], reserve: list) -> None:
    """Entry point in the confined child (``reserve``: see :class:`Reporter`)."""
    reporter = Reporter(payload["nonce"], reserve)
    ctx = Context(payload, reporter, snapshot)
    styles[payload["style"]].run(ctx)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except _BaseException:                  # noqa: BLE001
            pass
