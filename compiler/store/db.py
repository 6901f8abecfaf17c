"""The DuckDB store: one file, numbered migrations, one writer, and a journal beside it.

The process that compiles owns the only read-write connection; every other command opens the file
read-only. Schema changes are SQL files ``migrations/NNN_name.sql`` applied in order, each in its
own transaction together with its row in ``schema_migrations``.

What the LLM layer has not yet group-committed lives in the journal directory beside the file
(:mod:`compiler.store.journal`). A read-write open folds what a dead process left there into the
store before anything else (:func:`compiler.llm.fold.recover`). A read-only open that finds leftover
segments folds them first through a short read-write connection, which it can only get when no
writer holds the store (and while one does, a read-only open is refused anyway), so a reader never
misses an answer that was journaled.
"""

from __future__ import annotations

import os
import re
import time
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Iterator

import duckdb

from compiler.errors import StoreError
from compiler.store import journal

DEFAULT_STORE = "data/distillc.duckdb"
_MIGRATION = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


def default_store_path() -> str:
    return os.environ.get("DISTILLC_STORE") or DEFAULT_STORE


def migrations() -> list[tuple[int, str, str]]:
    """(number, name, sql) of every shipped migration, in order."""
    found = []
    for entry in resources.files("compiler.store").joinpath("migrations").iterdir():
        m = _MIGRATION.match(entry.name)
        if m:
            found.append((int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
    found.sort()
    numbers = [n for n, _, _ in found]
    if numbers != list(range(1, len(numbers) + 1)):
        raise RuntimeError(f"migration numbers are not 1..N: {numbers}")
    return found


class Store:
    """A connection to the store file. Use :meth:`open` (read-write, migrates) or
    :meth:`open_readonly` (the file must exist and be at the current schema)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: str, read_only: bool):
        self.con, self.path, self.read_only = con, path, read_only

    # -- opening -------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike[str], wait_seconds: float = 0.0) -> "Store":
        """Open for writing (creating and migrating as needed). While another process holds the
        file (a reader such as ``distillc view`` between its short reads, or another writer), try
        again for up to ``wait_seconds`` before the "in use" error."""
        path = str(path)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                con = _connect(path, read_only=False)
                break
            except StoreError as exc:
                if "in use" not in str(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.1)
        store = cls(con, path, read_only=False)
        try:
            store.migrate()
            store.recover()
        except BaseException:
            store.close()
            raise
        return store

    @classmethod
    def open_readonly(cls, path: str | os.PathLike[str]) -> "Store":
        path = str(path)
        cls.prepare_for_reading(path)
        store = cls(_connect(path, read_only=True), path, read_only=True)
        try:
            store.check_readable()
        except BaseException:
            store.close()
            raise
        return store

    @classmethod
    def prepare_for_reading(cls, path: str) -> None:
        """What a reader needs before it opens ``path``: the file exists, and leftover journal
        segments are folded in."""
        if not Path(path).exists():
            raise StoreError(f"{path}: no store here (compile a recipe first, or pass --store PATH)")
        if journal.segments(journal.journal_dir(path)):
            cls._fold_for_reading(path)

    def check_readable(self) -> None:
        """A reader never migrates: the schema must be this distillc's."""
        have, head = self.schema_version(), len(migrations())
        if have > head:
            raise self.newer_error(have, head)
        if have < head:
            raise StoreError(f"{self.path}: store schema is at {have}, this distillc needs {head}; "
                             "run `distillc compile` once to migrate it")

    @classmethod
    def _fold_for_reading(cls, path: str) -> None:
        """Fold leftover journal segments in before a read-only open (the schema must be current:
        a reader never migrates)."""
        try:
            store = cls(_connect(path, read_only=False), path, read_only=False)
        except StoreError as exc:
            if "in use" in str(exc):
                raise
            raise StoreError(f"{path}: its journal ({journal.journal_dir(path)}) holds LLM calls not yet in the "
                             f"store, and the store cannot be opened for writing to fold them in: {exc}") from None
        with store:
            if store.schema_version() == len(migrations()):
                store.recover()

    def recover(self) -> int:
        """Fold the journal's leftover segments in; returns the calls marked ``interrupted``."""
        from compiler.llm.fold import recover
        from compiler.llm.recorder import new_call_id

        return recover(self, new_call_id.prefix)

    def journal_writer(self) -> journal.JournalWriter:
        """A writer of journal segments for this store (one per recorder)."""
        return journal.JournalWriter(journal.journal_dir(self.path))

    def limit_memory(self, limit: str) -> None:
        """Cap DuckDB's buffer memory (it spills to a temporary directory beside the store beyond it)."""
        if not re.fullmatch(r"\d+(\.\d+)?\s*[KMGT]i?B", limit.strip(), flags=re.I):
            raise StoreError(f"memory limit {limit!r}: expected a size like 1GB or 512MiB")
        self.con.execute(f"SET memory_limit = '{limit.strip()}'")
        self.con.execute(f"SET temp_directory = '{self.path}.tmp'")

    def close(self) -> None:
        self.con.close()
        if not self.read_only:
            journal.tidy(journal.journal_dir(self.path))

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schema --------------------------------------------------------------------------------
    def schema_version(self) -> int:
        exists = self.con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_migrations'"
        ).fetchall()[0][0]
        if not exists:
            return 0
        return int(self.con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchall()[0][0])

    def migrate(self) -> list[int]:
        """Apply every migration above the current version; returns the numbers applied."""
        self.con.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)"
        )
        current, applied, known = self.schema_version(), [], migrations()
        if current > len(known):    # written by a newer distillc: writing could corrupt it
            raise self.newer_error(current, len(known))
        for number, name, sql in known:
            if number <= current:
                continue
            with self.transaction():
                self.con.execute(sql)
                self.con.execute("INSERT INTO schema_migrations VALUES (?, ?, now())", [number, name])
            applied.append(number)
        return applied

    def newer_error(self, have: int, head: int) -> StoreError:
        return StoreError(f"{self.path}: store schema is at {have}, newer than this distillc knows ({head}); "
                          "upgrade distillc to use this store")

    # -- transactions ----------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        self.con.execute("BEGIN TRANSACTION")
        try:
            yield self.con
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        else:
            self.con.execute("COMMIT")

    def table_exists(self, name: str) -> bool:
        return bool(self.con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]
        ).fetchall()[0][0])


def _connect(path: str, read_only: bool) -> duckdb.DuckDBPyConnection:
    try:
        return duckdb.connect(path, read_only=read_only)
    except duckdb.Error as exc:
        raise opening_error(path, exc) from None


def opening_error(path: str, exc: duckdb.Error) -> StoreError:
    """The one-line error for a store file DuckDB could not open (or attach): in use by another
    process, unreadable, or not a database."""
    msg = str(exc).splitlines()[0]
    if isinstance(exc, duckdb.IOException):
        if "lock" in msg.lower():
            return StoreError(f"{path}: store is in use by another distillc process ({msg})")
        return StoreError(f"{path}: cannot open store ({msg})")
    return StoreError(f"{path}: not a distillc store ({msg})")
