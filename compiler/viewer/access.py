"""Read-only access to the store for the viewer's requests, without holding the file between them.

Opening a DuckDB file costs tens of milliseconds (its catalog is loaded and a thread pool started)
— most of a page's budget. The viewer instead keeps one in-memory DuckDB for the life of the
process and ATTACHes the store file to it READ_ONLY while at least one request is reading, and
DETACHes it as soon as none is: between requests no lock is held, so ``distillc compile`` can open
the file for writing (the one exception: while a version's row costs are computed, once, in the
background — seconds on a 100k-row version). Each request reads through its own cursor whose default catalog is the
attached store, wrapped in a :class:`~compiler.store.db.Store`, so the store's query helpers work
unchanged.

The checks are those of :meth:`Store.open_readonly`: the file must exist, leftover journal segments
are folded in first (through a short read-write open, only possible when no writer holds the file),
and the schema must be the current one. While a writer holds the file, attaching fails and the
error says the store is "in use" (:func:`compiler.store.db.opening_error`, shared with every open).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

import duckdb

from compiler.store.db import Store, opening_error

ALIAS = "viewed_store"


class StoreAccess:
    """Per-request read-only access to one store file."""

    def __init__(self, path: str):
        self.path = str(path)
        self.db = duckdb.connect()
        self.lock = threading.Lock()
        self.readers = 0

    @contextmanager
    def open(self) -> Iterator[Store]:
        self._enter()
        try:
            cursor = self.db.cursor()
            try:
                cursor.execute(f"USE {ALIAS}")
                store = Store(cursor, self.path, read_only=True)
                store.check_readable()
                yield store
            finally:
                cursor.close()
        finally:
            self._leave()

    def _enter(self) -> None:
        with self.lock:
            if self.readers == 0:
                self._attach()
            self.readers += 1

    def _leave(self) -> None:
        with self.lock:
            self.readers -= 1
            if self.readers == 0:
                self.db.execute(f"DETACH {ALIAS}")

    def _attach(self) -> None:
        Store.prepare_for_reading(self.path)
        quoted = self.path.replace("'", "''")
        try:
            self.db.execute(f"ATTACH '{quoted}' AS {ALIAS} (READ_ONLY)")
        except duckdb.Error as exc:
            raise opening_error(self.path, exc) from None

    def close(self) -> None:
        self.db.close()
