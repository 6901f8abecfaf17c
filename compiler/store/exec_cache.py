"""The execution cache in the store: results keyed by hash(code, tests, limits, runtime version),
so identical re-executions cost nothing across runs."""

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
        rows = self.store.con.execute(
            "SELECT key, result FROM exec_cache WHERE list_contains(?, key)", [list(set(keys))]).fetchall()
        return {k: ExecResult.from_dict(json.loads(r)) for k, r in rows}

    def put_many(self, items: dict[str, ExecResult]) -> None:
        if not items or self.store.read_only:
            return
        import pyarrow as pa

        table = pa.table({"key": list(items), "result": [json.dumps(r.to_dict()) for r in items.values()]})
        with self.store.transaction() as con:
            con.register("_exec_rows", table)
            con.execute("INSERT OR IGNORE INTO exec_cache SELECT key, result, now() FROM _exec_rows")
            con.unregister("_exec_rows")
