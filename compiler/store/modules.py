"""The module database's queries (table ``modules``, migration 005).

Modules are only ever added, each with a ``seq`` from one sequence. A retrieval reads the modules up
to a *horizon* (the highest ``seq`` it could see), records that horizon in its output, and a corpus
version therefore says which modules it saw: the database grows, a version's view of it does not.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import polars as pl
import pyarrow as pa

from compiler.errors import StoreError

if TYPE_CHECKING:
    from compiler.moduledb.records import Module
    from compiler.store.db import Store

LISTED = "module_id, seq, name, signature, docstring, verified, origin, added_fp, source, embedder, created_at"


def available(store: "Store") -> bool:
    return store.table_exists("modules")


def horizon(store: "Store") -> int:
    """The highest ``seq`` in the database (0 when it is empty)."""
    if not available(store):
        return 0
    return int(store.con.execute("SELECT coalesce(max(seq), 0) FROM modules").fetchall()[0][0])


def _where(upto: int | None, verified_only: bool, origins: Sequence[str] | None) -> tuple[str, list[Any]]:
    conds, args = ["TRUE"], []
    if upto is not None:
        conds.append("seq <= ?")
        args.append(upto)
    if verified_only:
        conds.append("verified")
    if origins:
        conds.append("list_contains(?, origin)")
        args.append(list(origins))
    return " AND ".join(conds), args


def count(store: "Store", upto: int | None = None, verified_only: bool = False,
          origins: Sequence[str] | None = None) -> int:
    if not available(store):
        return 0
    where, args = _where(upto, verified_only, origins)
    return int(store.con.execute(f"SELECT count(*) FROM modules WHERE {where}", args).fetchall()[0][0])


def listing(store: "Store", upto: int | None = None, verified_only: bool = False,
            origins: Sequence[str] | None = None, with_code: bool = False) -> pl.DataFrame:
    """The modules (in ``seq`` order), without their vectors."""
    extra = ", code, tests" if with_code else ""
    if not available(store):
        return pl.DataFrame()
    where, args = _where(upto, verified_only, origins)
    return store.con.sql(f"SELECT {LISTED}{extra} FROM modules WHERE {where} ORDER BY seq", params=args).pl()


def vectors(store: "Store", module_ids: list[str], embedder: str) -> dict[str, np.ndarray]:
    """The stored embeddings of these modules that were made by ``embedder``."""
    from compiler.embed.cache import matrix_of

    table = store.con.sql(
        "SELECT module_id, embedding FROM modules WHERE embedder = ? AND list_contains(?, module_id)",
        params=[embedder, module_ids]).to_arrow_table()
    if table.num_rows == 0:
        return {}
    return dict(zip(table.column("module_id").to_pylist(), matrix_of(table.column("embedding"))))


def existing(store: "Store", module_ids: list[str]) -> set[str]:
    if not module_ids or not available(store):
        return set()
    rows = store.con.execute("SELECT module_id FROM modules WHERE list_contains(?, module_id)",
                             [module_ids]).fetchall()
    return {r[0] for r in rows}


def insert(store: "Store", modules: Sequence["Module"], embeddings: np.ndarray, embedder: str,
           added_fp: str | None) -> list[str]:
    """Add modules not yet in the database, in order, in one transaction; returns the ids added."""
    have = existing(store, [m.module_id for m in modules])
    fresh, rows, seen = [], [], set(have)
    for module, vector in zip(modules, embeddings):
        if module.module_id in seen:
            continue
        seen.add(module.module_id)
        fresh.append(module.module_id)
        rows.append((module, vector))
    if not rows:
        return []
    table = pa.table({
        "module_id": [m.module_id for m, _ in rows], "name": [m.name for m, _ in rows],
        "signature": [m.signature for m, _ in rows], "docstring": [m.docstring for m, _ in rows],
        "code": [m.code for m, _ in rows], "tests": [json.dumps(list(m.tests)) for m, _ in rows],
        "verified": [m.verified for m, _ in rows], "origin": [m.origin for m, _ in rows],
        "source": [m.source for m, _ in rows],
        "embedding": pa.array([v.astype(np.float32) for _, v in rows], type=pa.list_(pa.float32())),
        "pos": list(range(len(rows)))})
    with store.transaction() as con:
        con.register("_modules", table)
        con.execute("INSERT INTO modules SELECT module_id, nextval('module_seq'), name, signature, docstring, code, "
                    "tests::JSON, verified, origin, ?, source, ?, embedding, now() FROM "
                    "(SELECT * FROM _modules ORDER BY pos)", [added_fp, embedder])
        con.unregister("_modules")
    return fresh


def get(store: "Store", ref: str) -> dict[str, Any]:
    """One module by id or unique id prefix (StoreError otherwise)."""
    rows = store.con.sql(f"SELECT {LISTED}, code, tests FROM modules WHERE starts_with(module_id, ?) "
                         "ORDER BY seq LIMIT 2", params=[ref]).pl().to_dicts() if available(store) else []
    if not rows:
        raise StoreError(f"no module {ref!r} in {store.path} (list them with `distillc modules ls`)")
    if len(rows) > 1 and rows[0]["module_id"] != ref:
        raise StoreError(f"module id prefix {ref!r} is ambiguous ({rows[0]['module_id']}, {rows[1]['module_id']}, ...)")
    row = rows[0]
    row["tests"] = json.loads(row["tests"]) if isinstance(row["tests"], str) else row["tests"]
    return row


def added_by(store: "Store", fps: Sequence[str]) -> int:
    """How many modules the stage outputs ``fps`` added."""
    if not fps or not available(store):
        return 0
    return int(store.con.execute("SELECT count(*) FROM modules WHERE list_contains(?, added_fp)",
                                 [list(fps)]).fetchall()[0][0])
