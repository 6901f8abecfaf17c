"""The cost of each kept example, computed inside DuckDB: the same assignment as the lineage walk of
:func:`compiler.cost.per_example_walk` (see :mod:`compiler.cost` for the rules), as set operations,
so a corpus of 100k examples is costed without loading its lineage into Python.

The steps, each a temporary table dropped at the end:

- ``rows``: (row_id, parent_ids) of every stage output of the version, read once;
- ``edges``: (child, parent) of every stage output of the version, self-references removed; rows that
  a call served but no stage kept (a failed request) hang from their task's first row, found through
  the rejections table;
- ``anc``: (example, ancestor) for every kept example, itself included (a recursive query);
  ``surv``: per row, its number of kept descendants (its *survivors*);
- ``calls``: each paid call's dollars split evenly over the rows it served; ``direct``: their sum
  per served row;
- ``push``: each served row without survivors hands its dollars up, split evenly over its parents,
  until a row with survivors takes them (``done``) or a root without survivors loses them;
- an example pays, over its ancestors, their own dollars and what was handed up to them, each divided
  by the row's survivors, plus an even share of what was lost.

``explain`` breaks the dearest examples' dollars down by stage and model (the ledger's labels), for
their ancestors' own calls and for the calls of the discarded rows handed up to those ancestors.
"""

from __future__ import annotations

import secrets
from typing import Any

from compiler.store import outputs
from compiler.store.db import Store
from compiler.store.versions import Version


class _Temp:
    """Temporary tables with a unique prefix on this connection, dropped on exit."""

    def __init__(self, store: Store):
        self.con, self.prefix, self.made = store.con, f"pe_{secrets.token_hex(4)}_", []

    def __enter__(self) -> "_Temp":
        return self

    def __exit__(self, *exc: object) -> None:
        for name in reversed(self.made):
            self.con.execute(f"DROP TABLE IF EXISTS {name}")

    def make(self, name: str, sql: str, params: list[Any] | None = None) -> str:
        table = self.prefix + name
        self.con.execute(f"CREATE TEMP TABLE {table} AS {sql}", params or [])
        self.made.append(table)
        return table

    def __getitem__(self, name: str) -> str:
        return self.prefix + name


def _columns(store: Store, fp: str) -> set[str]:
    return set(outputs.output_columns(store, fp))


def _tables(t: _Temp, store: Store, version: Version) -> None:
    fps = version.fingerprints
    rows = t.make("rows", " UNION ALL ".join(f"SELECT row_id, parent_ids FROM {outputs.table_name(fp)}" for fp in fps))
    first = fps[0]
    task = "task_id" if "task_id" in _columns(store, first) else "NULL"
    t.make("roots", f"SELECT {task} AS task_id, min(row_id) AS root FROM {outputs.table_name(first)} "
                    f"WHERE {task} IS NOT NULL GROUP BY 1")
    t.make("calls", "SELECT c.call_id, c.stage, c.model, r.row_id, c.usd / json_array_length(c.served_rows) AS usd "
                    "FROM llm_calls c, unnest(json_extract_string(c.served_rows, '$[*]')) AS r(row_id) "
                    "WHERE list_contains(?, c.stage_fp) AND c.usd > 0 AND json_array_length(c.served_rows) > 0", [fps])
    t.make("direct", f"SELECT row_id, sum(usd) AS usd FROM {t['calls']} GROUP BY row_id")
    t.make("edges", f"""
        SELECT DISTINCT child, parent FROM (
          SELECT row_id AS child, unnest(parent_ids) AS parent FROM {rows}
          UNION ALL
          SELECT o.row_id, r.root FROM (
            SELECT j.row_id, any_value(j.task_id) AS task_id FROM rejections j
            WHERE list_contains(?, j.fingerprint) AND j.row_id IN (
              SELECT row_id FROM {t['direct']} d WHERE NOT EXISTS (SELECT 1 FROM {rows} x WHERE x.row_id = d.row_id))
            GROUP BY j.row_id) o JOIN {t['roots']} r USING (task_id))
        WHERE parent IS NOT NULL AND parent <> child""", [fps])
    final = outputs.positioned(store, version.fingerprint)
    cols = _columns(store, version.fingerprint)
    t.make("final", f"SELECT row_number() OVER (ORDER BY {outputs.POS}) AS i, row_id, "
                    f"{'task_id' if 'task_id' in cols else 'NULL'} AS task_id, "
                    f"{'variant' if 'variant' in cols else 'NULL'} AS variant FROM {final}")


def _assignment(t: _Temp) -> None:
    t.make("anc", f"""
        WITH RECURSIVE a(f, r) AS (
          SELECT row_id, row_id FROM {t['final']}
          UNION
          SELECT a.f, e.parent FROM a JOIN {t['edges']} e ON e.child = a.r)
        SELECT * FROM a""")
    t.make("surv", f"SELECT r, count(*) AS n FROM {t['anc']} GROUP BY r")
    t.make("fan", f"SELECT child, count(*) AS k FROM {t['edges']} GROUP BY child")
    t.make("push", f"""
        WITH RECURSIVE p(origin, r, amount, done) AS (
          SELECT d.row_id, d.row_id, d.usd, false FROM {t['direct']} d
          WHERE d.row_id NOT IN (SELECT r FROM {t['surv']})
          UNION ALL
          SELECT p.origin, e.parent, p.amount / k.k, s.r IS NOT NULL
          FROM p JOIN {t['edges']} e ON e.child = p.r JOIN {t['fan']} k ON k.child = p.r
          LEFT JOIN {t['surv']} s ON s.r = e.parent
          WHERE NOT p.done)
        SELECT * FROM p""")
    t.make("own", f"SELECT d.row_id AS r, d.usd / s.n AS usd FROM {t['direct']} d JOIN {t['surv']} s ON s.r = d.row_id")
    t.make("pushed", f"SELECT p.r, sum(p.amount) / any_value(s.n) AS usd FROM {t['push']} p "
                     f"JOIN {t['surv']} s ON s.r = p.r WHERE p.done GROUP BY p.r")


def per_example_sql(store: Store, version: Version, explain: int = 0) -> dict[str, Any]:
    """Each kept example's dollars, as :func:`compiler.cost.per_example_walk` computes them; with
    ``explain`` > 0 the ``explain`` dearest examples also carry ``lineage`` (see the module docstring)."""
    con = store.con
    with _Temp(store) as t:
        _tables(t, store, version)
        _assignment(t)
        kept, total = con.execute(f"SELECT (SELECT count(*) FROM {t['final']}), "
                                  f"(SELECT coalesce(sum(usd), 0) FROM {t['direct']})").fetchone()
        lost = con.execute(f"SELECT coalesce(sum(amount), 0) FROM {t['push']} p WHERE NOT p.done "
                           f"AND p.r NOT IN (SELECT child FROM {t['fan']})").fetchone()[0]
        per_global = lost / kept if kept else 0.0
        rows = con.execute(f"""
            SELECT f.row_id, any_value(f.task_id), any_value(f.variant), coalesce(sum(o.usd), 0), coalesce(sum(p.usd), 0)
            FROM {t['final']} f JOIN {t['anc']} a ON a.f = f.row_id
            LEFT JOIN {t['own']} o ON o.r = a.r LEFT JOIN {t['pushed']} p ON p.r = a.r
            GROUP BY f.row_id ORDER BY min(f.i)""").fetchall()
        examples = [{"row_id": r, "task_id": task, "variant": v, "usd": o + s + per_global, "ancestors_usd": o,
                     "siblings_usd": s, "unattributed_usd": per_global} for r, task, v, o, s in rows]
        if explain:
            _explain(t, store, version, sorted(examples, key=lambda e: (-e["usd"], e["row_id"]))[:explain])
    return {"examples": examples, "total_usd": float(total), "unattributed_usd": float(lost) if not kept else 0.0}


def _explain(t: _Temp, store: Store, version: Version, top: list[dict[str, Any]]) -> None:
    t.make("top", "SELECT unnest(?::VARCHAR[]) AS f", [[e["row_id"] for e in top]])
    shares = {   # per example: (row the calls served, fraction of that row's dollars the example pays)
        "ancestors": t.make("own_share", f"SELECT a.f, a.r AS row_id, 1.0 / s.n AS share FROM {t['anc']} a "
                                         f"JOIN {t['top']} USING (f) JOIN {t['surv']} s ON s.r = a.r"),
        "discarded siblings": t.make("sibling_share", f"""
            SELECT a.f, p.origin AS row_id, sum(p.amount / s.n / d.usd) AS share
            FROM {t['push']} p JOIN {t['anc']} a ON a.r = p.r JOIN {t['top']} USING (f)
            JOIN {t['surv']} s ON s.r = p.r JOIN {t['direct']} d ON d.row_id = p.origin
            WHERE p.done GROUP BY a.f, p.origin"""),
    }
    order = {s["name"]: i for i, s in enumerate(version.stages)}
    found: dict[str, list[dict[str, Any]]] = {e["row_id"]: [] for e in top}
    for via, table in shares.items():
        for f, stage, model, n, k, usd in store.con.execute(
                f"SELECT w.f, c.stage, c.model, count(DISTINCT c.call_id), count(DISTINCT c.row_id), "
                f"sum(c.usd * w.share) FROM {table} w JOIN {t['calls']} c USING (row_id) GROUP BY 1, 2, 3").fetchall():
            found[f].append({"via": via, "stage": stage, "model": model, "calls": int(n), "rows": int(k), "usd": float(usd)})
    for ex in top:
        ex["lineage"] = sorted(found[ex["row_id"]], key=lambda g: (
            g["via"] != "ancestors", order.get(g["stage"].split(":")[0], len(order)), g["stage"], g["model"]))
