"""The execution cache in the store: results keyed by hash(code, tests, limits, runtime version),
so identical re-executions cost nothing across runs. The table is append-only (no key index to
check on each store: see migration 007); lookups join the wanted keys against it."""

from __future__ import annotations

import json

from compiler.store.db import Store
from evals.sandbox.types import ExecResult


class StoreExecCache:
    """The sandbox's ``ExecCache`` protocol over the ``exec_cache`` table."""

    def __init__(self, store: Store):
        self.store = store

    def get_many(self, keys: list[str]) -> dict[str, ExecResult]:
        if not keys:
            return {}
        import pyarrow as pa

        con = self.store.con
        con.register("_exec_keys", pa.table({"key": list(set(keys))}))
        try:            # a key stored twice (two compiles racing on one job) holds the same result
            rows = con.execute("SELECT key, any_value(result) FROM exec_cache "
                               "WHERE key IN (SELECT key FROM _exec_keys) GROUP BY key").fetchall()
        finally:
            con.unregister("_exec_keys")
        return {k: ExecResult.from_dict(json.loads(r)) for k, r in rows}

    def put_many(self, items: dict[str, ExecResult]) -> None:
        if not items or self.store.read_only:
            return
        import pyarrow as pa

        table = pa.table({"key": list(items), "result": [json.dumps(r.to_dict()) for r in items.values()]})
        with self.store.transaction() as con:
            con.register("_exec_rows", table)
            con.execute("INSERT INTO exec_cache SELECT key, result, now() FROM _exec_rows")
            con.unregister("_exec_rows")
