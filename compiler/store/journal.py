"""An append-only journal beside the store: what must outlive a ``kill -9`` between group commits.

Committing to DuckDB costs milliseconds per transaction, so the LLM layer commits its rows in groups
(every 0.1 s or so). What happened since the last group commit lives in the journal instead: one JSON
line per event, written with a plain ``write()`` the moment the event happens (an answer is written
before it is used). A ``write()`` that returned sits in the kernel's page cache and survives the death
of the process; only a crash of the machine itself can lose it (there is no fsync per line, which
would cost milliseconds per answer).

Lines go to *segments*: files in a directory beside the DuckDB file (``distillc.duckdb.journal/``).
A writer seals its segment when the rows it holds are taken for a group commit and opens a new one
for what follows; the sealed segment is deleted only after the transaction holding its rows has
committed. Segments still present when the store is next opened belong to a process that died (or
whose commit failed) and are folded into the store then (:mod:`compiler.llm.fold`).

Names sort in creation order (the writer's start time in nanoseconds, its id, a sequence number), so
folding replays events in the order they were written. A line counts only with its newline: a torn
last line (the process died inside a ``write()``) is ignored.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

SUFFIX = ".jsonl"
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode
_OPEN: set[str] = set()          # segments being written by this process (never folded from under it)
_OPEN_LOCK = threading.Lock()


def journal_dir(store_path: str | os.PathLike[str]) -> Path:
    """The journal directory of the store file at ``store_path``."""
    return Path(f"{os.fspath(store_path)}.journal")


class JournalWriter:
    """Appends events to this writer's current segment; :meth:`seal` hands the segment over."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.owner = f"{time.time_ns():020d}-{uuid.uuid4().hex[:12]}"
        self._seq = itertools.count()
        self._fd: int | None = None
        self._path: Path | None = None
        self._lock = threading.Lock()

    def append(self, event: dict[str, Any]) -> None:
        """Write one event as one line; it has reached the kernel when this returns."""
        line = (_encode(event) + "\n").encode("utf-8")
        with self._lock:
            if self._fd is None:
                self._open()
            view = memoryview(line)
            while view:
                view = view[os.write(self._fd, view):]

    def seal(self) -> Path | None:
        """Close the current segment and return its path (None when nothing was written since the last
        seal). Its events' rows are being committed; :func:`discard` it once they are."""
        with self._lock:
            fd, path = self._fd, self._path
            self._fd = self._path = None
        if fd is None:
            return None
        os.close(fd)
        with _OPEN_LOCK:
            _OPEN.discard(str(path))
        return path

    def _open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{self.owner}-{next(self._seq):08d}{SUFFIX}"
        with _OPEN_LOCK:
            _OPEN.add(str(path))
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        self._path = path


def segments(directory: Path) -> list[Path]:
    """Segments left to fold, oldest first (those this process is still writing are left alone)."""
    try:
        names = sorted(n for n in os.listdir(directory) if n.endswith(SUFFIX))
    except FileNotFoundError:
        return []
    with _OPEN_LOCK:
        return [directory / n for n in names if str(directory / n) not in _OPEN]


def read(path: Path) -> list[dict[str, Any]]:
    """The events of one segment; a torn or unreadable line is skipped."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    events = []
    for line in data.split(b"\n")[:-1]:       # what follows the last newline is a torn write
        if not line.strip():
            continue
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    return events


def discard(paths: list[Path] | Path | None) -> None:
    """Delete segments whose rows are committed."""
    for path in [paths] if isinstance(paths, Path) else paths or ():
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def tidy(directory: Path) -> None:
    """Remove the journal directory when it is empty (a store without a journal leaves none behind)."""
    try:
        directory.rmdir()
    except OSError:
        pass
