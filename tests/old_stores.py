"""Stores as an older distillc wrote them, for tests of migrations."""

from __future__ import annotations

import duckdb

from compiler.store.db import migrations


def store_at_migration(path, number: int) -> duckdb.DuckDBPyConnection:
    """A new DuckDB file at ``path`` with the schema of migrations 1 to ``number`` applied and
    recorded, as the distillc of that schema left it; an open connection for the test to add rows."""
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, "
                "applied_at TIMESTAMP NOT NULL)")
    for version, name, sql in migrations()[:number]:
        con.execute(sql)
        con.execute("INSERT INTO schema_migrations VALUES (?, ?, now())", [version, name])
    return con
