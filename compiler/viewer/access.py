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
error says the store is "in use", as :func:`compiler.store.db._connect` does.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb

from compiler.errors import StoreError
from compiler.store import journal
from compiler.store.db import Store, migrations

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
                self._check_schema(store)
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
        if not Path(self.path).exists():
            raise StoreError(f"{self.path}: no store here (compile a recipe first, or pass --store PATH)")
        if journal.segments(journal.journal_dir(self.path)):
            Store._fold_for_reading(self.path)
        quoted = self.path.replace("'", "''")
        try:
            self.db.execute(f"ATTACH '{quoted}' AS {ALIAS} (READ_ONLY)")
        except duckdb.IOException as exc:
            msg = str(exc).splitlines()[0]
            if "lock" in msg.lower():
                raise StoreError(f"{self.path}: store is in use by another distillc process ({msg})") from None
            raise StoreError(f"{self.path}: cannot open store ({msg})") from None
        except duckdb.Error as exc:
            raise StoreError(f"{self.path}: not a distillc store ({str(exc).splitlines()[0]})") from None

    def _check_schema(self, store: Store) -> None:
        have, head = store.schema_version(), len(migrations())
        if have > head:
            raise store.newer_error(have, head)
        if have < head:
            raise StoreError(f"{self.path}: store schema is at {have}, this distillc needs {head}; "
                             "run `distillc compile` once to migrate it")

    def close(self) -> None:
        self.db.close()
