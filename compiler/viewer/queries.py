"""The viewer's read-only queries: corpora and versions, the rows of a version (kept and dropped,
searched and filtered in DuckDB), and one row's lineage with the LLM calls that served it.

Every function takes an open :class:`~compiler.store.db.Store` (read-only) and returns plain
dicts, so the pages, the JSON endpoints and the tests share them.

Rows of a version are its final stage's output (``kept``) and the rejections of all its stages
(``dropped``), listed as one relation so that search, filters and LIMIT/OFFSET pagination run in
SQL. A kept row's ``usd`` is its cost as ``distillc cost --by example`` assigns it (shares of its
ancestors' calls and of discarded siblings); a dropped row's is what the calls that served it
directly cost. Versions never change, so those figures are computed once per version and kept in
memory by the caller (:func:`row_costs`), then joined in as an Arrow table: the store is never
written.

A row's lineage walks ``parent_ids`` back through the stages of its version, then shows, stage by
stage in order, the columns each stage wrote for the row or one of its ancestors: a delta stage's
table holds exactly those; for a full-layout stage they are the columns that are new or differ from
what the row (or its parent) carried before.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from compiler.errors import StoreError
from compiler.llm import ledger
from compiler.store import outputs
from compiler.store.db import Store
from compiler.store.versions import Version, list_versions

PAGE_SIZE = 50
TEXT_COLUMNS = ("instruction", "prompt", "completion", "messages", "chosen", "rejected", "response", "text")
STATUSES = ("all", "kept", "dropped")
_KEYS = (outputs.POS, outputs.BASE)


class NotFound(LookupError):
    """A corpus, version or row named in a URL that the store does not hold."""


@dataclass(frozen=True)
class RowQuery:
    """What the rows page asks for: a text search, filters and a page (1-based)."""

    q: str = ""
    status: str = "all"
    variant: str = ""
    stage: str = ""
    reason: str = ""
    min_usd: float | None = None
    max_usd: float | None = None
    page: int = 1
    page_size: int = PAGE_SIZE


# -- corpora and versions --------------------------------------------------------------------------

def version_usd(store: Store, version: Version) -> float:
    return float(ledger.totals(store.con, stage_fps=version.fingerprints)[0]["usd"])


def corpora(store: Store) -> list[dict[str, Any]]:
    """Every corpus with its versions (rows, fingerprint, created, ledger cost)."""
    found: dict[str, list[dict[str, Any]]] = {}
    for v in list_versions(store):
        found.setdefault(v.corpus, []).append({
            "version": v.version, "ref": v.ref, "rows": v.rows, "fingerprint": v.fingerprint,
            "created_at": str(v.created_at)[:19], "usd": version_usd(store, v),
            "stages": [s["name"] for s in v.stages]})
    return [{"name": name, "versions": versions} for name, versions in found.items()]


def get_version(store: Store, corpus: str, number: int) -> Version:
    for v in list_versions(store, corpus):
        if v.version == number:
            return v
    raise NotFound(f"{corpus}@{number}: no such corpus version in {store.path}")


_DONE: dict[tuple[str, str], Any] = {}


def _memo(store: Store, key: str, compute):
    """What a done stage output's relation looks like never changes: remember it per store file."""
    k = (store.path, key)
    if k not in _DONE:
        _DONE[k] = compute()
    return _DONE[k]


def _columns(store: Store, relation: str) -> list[str]:
    return _memo(store, f"describe {relation}",
                 lambda: [r[0] for r in store.con.execute(f"DESCRIBE {relation}").fetchall()])


def _layout(store: Store, fp: str) -> str | None:
    return _memo(store, f"layout {fp}", lambda: outputs.layout_of(store, fp))


def facets(store: Store, version: Version) -> dict[str, Any]:
    """The values the filters offer: variants of the kept rows, stages and reasons of the dropped."""
    final = outputs.table_name(version.fingerprint)
    variants = []
    if "variant" in _columns(store, final):
        variants = [r[0] for r in store.con.execute(
            f"SELECT DISTINCT variant FROM {final} WHERE variant IS NOT NULL ORDER BY 1").fetchall()]
    reasons = store.con.execute(
        "SELECT fingerprint, reason, count(*) FROM rejections WHERE list_contains(?, fingerprint) "
        "GROUP BY ALL ORDER BY 3 DESC", [version.fingerprints]).fetchall()
    names = {s["fingerprint"]: s["name"] for s in version.stages}
    dropped = [{"stage": names[fp], "reason": reason, "rows": int(n)} for fp, reason, n in reasons]
    return {"variants": variants, "stages": [s["name"] for s in version.stages],
            "reasons": sorted({d["reason"] for d in dropped}), "dropped": dropped}


# -- costs -----------------------------------------------------------------------------------------

def row_costs(store: Store, version: Version) -> pa.Table:
    """(row_id, usd) of every kept example (its ``cost --by example`` figure) and of every other
    row the ledger served directly."""
    from compiler.cost import per_example

    direct = ledger.cost_by_row(store.con, version.fingerprints)
    costs = dict(direct)
    costs.update({e["row_id"]: e["usd"] for e in per_example(store, version)["examples"]})
    return pa.table({"row_id": pa.array(list(costs), pa.string()),
                     "usd": pa.array(list(costs.values()), pa.float64())})


# -- rows of a version -----------------------------------------------------------------------------

def _text_match(cols: list[str], alias: str, q: str) -> str:
    """SQL true when one of the relation's text columns (or its task id) holds ``q``."""
    present = [c for c in ("task_id", *TEXT_COLUMNS) if c in cols]
    if not present:
        return "false"
    return "(" + " OR ".join(_holds(f"{alias}.{outputs.q(c)}", q) for c in present) + ")"


def _positioned(store: Store, fp: str) -> str:
    return _memo(store, f"positioned {fp}", lambda: outputs.positioned(store, fp))


def _kept_sql(store: Store, version: Version, query: RowQuery) -> str:
    fp = version.fingerprint
    cols = _columns(store, outputs.table_name(fp))
    task = "f.task_id" if "task_id" in cols else "NULL"
    variant = "f.variant" if "variant" in cols else "NULL"
    first = next((c for c in TEXT_COLUMNS if c in cols), None)
    preview = f"left(CAST(f.{outputs.q(first)} AS VARCHAR), 240)" if first else "NULL"
    where = f"WHERE {_text_match(cols, 'f', query.q)}" if query.q else ""
    return (f"SELECT 'kept' AS status, 0 AS stage_idx, f.{outputs.POS} AS ord, f.row_id, "
            f"CAST({task} AS VARCHAR) AS task_id, CAST({variant} AS VARCHAR) AS variant, "
            f"NULL::VARCHAR AS stage, NULL::VARCHAR AS stage_fp, NULL::VARCHAR AS reason, NULL::VARCHAR AS detail, "
            f"{preview} AS preview FROM {_positioned(store, fp)} f {where}")


def _dropped_text(store: Store, version: Version, q: str) -> str:
    """SQL true when a rejection's reason, detail or task id, or its task's instruction (in the
    version's first stage, the task table), holds ``q``."""
    first = version.fingerprints[0]
    cols = _columns(store, outputs.table_name(first))
    conds = [_holds(f"r.{c}", q) for c in ("task_id", "reason", "detail")]
    if "task_id" in cols and "instruction" in cols:
        conds.append(f"r.task_id IN (SELECT task_id FROM {_positioned(store, first)} WHERE {_holds('instruction', q)})")
    return "(" + " OR ".join(conds) + ")"


def _dropped_sql(store: Store, version: Version, query: RowQuery) -> str:
    stages = ", ".join(f"({i}, '{s['fingerprint']}', '{s['name'].replace(chr(39), chr(39) * 2)}')"
                       for i, s in enumerate(version.stages, 1))
    where = f"WHERE {_dropped_text(store, version, query.q)}" if query.q else ""
    return (f"SELECT 'dropped' AS status, s.idx AS stage_idx, r.rowid AS ord, r.row_id, r.task_id, "
            f"NULL::VARCHAR AS variant, s.name AS stage, s.fp AS stage_fp, r.reason, r.detail, "
            f"left(r.detail, 240) AS preview "
            f"FROM rejections r JOIN (VALUES {stages}) s(idx, fp, name) ON r.fingerprint = s.fp {where}")


_WILDCARDS = ("%", "_", "\\")


def _holds(column: str, q: str) -> str:
    """SQL true when ``column`` holds the searched text ``q``, ignoring case: an ILIKE pattern
    (``$like``) when ``q`` has no wildcard character (DuckDB's fastest path: an ESCAPE clause makes
    it several times slower), else the lower-cased text matched literally (``$needle``)."""
    if any(w in q for w in _WILDCARDS):
        return f"contains(lower(CAST({column} AS VARCHAR)), $needle)"
    return f"CAST({column} AS VARCHAR) ILIKE $like"


def _search_args(q: str) -> dict[str, str]:
    return {"needle": q.lower()} if any(w in q for w in _WILDCARDS) else {"like": f"%{q}%"}


def _filters(query: RowQuery) -> tuple[str, dict[str, Any]]:
    """The WHERE over the union of kept and dropped rows, and every named parameter the query uses
    (the search's are used inside the parts)."""
    conds: list[str] = []
    args: dict[str, Any] = _search_args(query.q) if query.q else {}
    for column, value in (("variant", query.variant), ("stage", query.stage), ("reason", query.reason)):
        if value:
            conds.append(f"u.{column} = ${column}")
            args[column] = value
    if query.min_usd is not None:
        conds.append("c.usd >= $min_usd")
        args["min_usd"] = query.min_usd
    if query.max_usd is not None:
        conds.append("coalesce(c.usd, 0) <= $max_usd")
        args["max_usd"] = query.max_usd
    return ("WHERE " + " AND ".join(conds)) if conds else "", args


def _parts(store: Store, version: Version, query: RowQuery) -> list[str]:
    kept = query.status in ("all", "kept") and not (query.stage or query.reason)
    dropped = query.status in ("all", "dropped") and not query.variant
    parts = [_kept_sql(store, version, query)] if kept else []
    if dropped:
        parts.append(_dropped_sql(store, version, query))
    return parts


def _count_and_page(store: Store, union: str, query: RowQuery) -> tuple[int, list[dict[str, Any]]]:
    """The number of matching rows, and the page's rows with their cost. The costs are joined
    before filtering only when a cost bound asks for them; otherwise only the page's rows are.
    A text search counts its matches in the same scan as it pages them (a window count); without
    one, counting apart is cheaper than carrying every row through the window."""
    where, args = _filters(query)
    by_cost = query.min_usd is not None or query.max_usd is not None
    costs = "LEFT JOIN _costs c ON c.row_id = u.row_id" if by_cost else ""
    offset = (max(query.page, 1) - 1) * query.page_size
    order = "ORDER BY status DESC, stage_idx, ord"
    counted = ", count(*) OVER () AS total" if query.q else ""
    picked = (f"SELECT u.status, u.stage_idx, u.ord, u.row_id, u.task_id, u.variant, u.stage, u.stage_fp, u.reason, "
              f"u.detail, "
              f"u.preview{counted} FROM ({union}) u {costs} {where} {order} "
              f"LIMIT {int(query.page_size)} OFFSET {int(offset)}")
    cur = store.con.execute(
        f"SELECT p.status, p.row_id, p.task_id, p.variant, p.stage, p.stage_fp, p.reason, p.detail, p.preview, c.usd"
        f"{', p.total' if counted else ''} FROM ({picked}) p LEFT JOIN _costs c ON c.row_id = p.row_id {order}", args)
    names = [d[0] for d in cur.description]
    rows = [dict(zip(names, r)) for r in cur.fetchall()]
    if counted and rows:
        total = int(rows[0]["total"])
        for r in rows:
            del r["total"]
    else:
        total = int(store.con.execute(f"SELECT count(*) FROM ({union}) u {costs} {where}", args).fetchall()[0][0])
    return total, rows


def search_rows(store: Store, version: Version, query: RowQuery, costs: pa.Table | None = None) -> dict[str, Any]:
    """One page of the version's rows matching ``query``, with the total number that match."""
    if query.status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}")
    parts = _parts(store, version, query)
    result = {"total": 0, "rows": [], "page": query.page, "page_size": query.page_size, "pages": 0}
    if not parts:
        return result
    costs = costs if costs is not None else pa.table({"row_id": pa.array([], pa.string()),
                                                      "usd": pa.array([], pa.float64())})
    store.con.register("_costs", costs)
    try:
        total, rows = _count_and_page(store, " UNION ALL ".join(f"({p})" for p in parts), query)
    finally:
        store.con.unregister("_costs")
    return {**result, "total": total, "rows": rows, "pages": -(-total // query.page_size)}


# -- one row's lineage -----------------------------------------------------------------------------

def _relation(store: Store, fp: str) -> str:
    """Where a stage's own rows are stored: its data table (delta: the columns it wrote)."""
    return outputs.table_name(fp) if _layout(store, fp) == "legacy" else outputs.data_table(fp)


def _rows_of(store: Store, fp: str, ids: set[str]) -> list[dict[str, Any]]:
    cur = store.con.execute(f"SELECT * FROM {_relation(store, fp)} WHERE row_id IN (SELECT unnest(?::VARCHAR[]))",
                            [sorted(ids)])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def _ancestry(store: Store, version: Version, row_id: str) -> tuple[set[str], dict[str, list[dict[str, Any]]]]:
    """Walking the stages backwards from ``row_id``: its ancestors, and each stage's stored rows of
    the row and the ancestors known by then (an ancestor only appears in stages before its
    descendants, or in the same ones when it kept its id)."""
    ids, rows = {row_id}, {}
    for fp in reversed(version.fingerprints):
        rows[fp] = _rows_of(store, fp, ids)
        for r in rows[fp]:
            ids.update(p for p in (r.get("parent_ids") or ()) if p)
    return ids, rows


def _written(row: dict[str, Any], before: dict[str, Any] | None, delta: bool) -> dict[str, Any]:
    cols = {k: v for k, v in row.items() if k not in _KEYS and k not in outputs.KEYS}
    if delta or before is None:
        return cols
    return {k: v for k, v in cols.items() if k not in before or before[k] != v}


def lineage(store: Store, version: Version, row_id: str) -> dict[str, Any]:
    """Stage by stage, what was written for ``row_id`` and its ancestors, the rejections among
    them, and every LLM call that served one of them."""
    ids, stored = _ancestry(store, version, row_id)
    rejected = _rejections(store, version, ids)
    seen: dict[str, dict[str, Any]] = {}
    stages = []
    for s in version.stages:
        delta = _layout(store, s["fingerprint"]) == "delta"
        rows = []
        for r in sorted(stored[s["fingerprint"]], key=lambda r: r.get(outputs.POS) or 0):
            base = seen.get(r.get(outputs.BASE) or r["row_id"]) or _parent_state(seen, r)
            rows.append({"row_id": r["row_id"], "parent_ids": list(r.get("parent_ids") or []),
                         "columns": _written(r, base, delta)})
            seen[r["row_id"]] = {**(base or {}), **{k: v for k, v in r.items() if k not in _KEYS}}
        stages.append({"name": s["name"], "uses": s["uses"], "fingerprint": s["fingerprint"], "rows": rows,
                       "rejections": [x for x in rejected if x["fingerprint"] == s["fingerprint"]]})
    if not any(st["rows"] or st["rejections"] for st in stages):
        raise NotFound(f"{version.ref} has no row {row_id}")
    final = {r["row_id"] for r in stages[-1]["rows"]}
    return {"row_id": row_id, "ref": version.ref, "kept": row_id in final, "ancestors": sorted(ids - {row_id}),
            "stages": stages, "calls": calls_of(store, version, ids)}


def _parent_state(seen: dict[str, dict[str, Any]], row: dict[str, Any]) -> dict[str, Any] | None:
    for p in row.get("parent_ids") or ():
        if p in seen:
            return seen[p]
    return None


def _rejections(store: Store, version: Version, ids: set[str]) -> list[dict[str, Any]]:
    rows = store.con.execute(
        "SELECT fingerprint, row_id, task_id, reason, detail FROM rejections WHERE list_contains(?, fingerprint) "
        "AND list_contains(?, row_id) ORDER BY rowid", [version.fingerprints, sorted(ids)]).fetchall()
    return [dict(zip(("fingerprint", "row_id", "task_id", "reason", "detail"), r)) for r in rows]


def calls_of(store: Store, version: Version, ids: set[str]) -> list[dict[str, Any]]:
    """The ledger's calls of the version's stages that served one of ``ids``, in the order they
    were made, with the request and the response text when the answer cache holds them."""
    cur = store.con.execute(
        "SELECT c.call_id, c.stage, c.role, c.model, c.backend, c.status, c.prompt_tokens, c.completion_tokens, "
        "c.usd, c.latency_s, c.status = 'cache_hit' AS cache_hit, c.served_rows, c.error, c.created_at, "
        "k.request, k.response FROM llm_calls c LEFT JOIN llm_cache k ON k.key = c.key "
        "WHERE list_contains(?, c.stage_fp) AND list_has_any(CAST(json_extract_string(c.served_rows, '$[*]') "
        "AS VARCHAR[]), ?) ORDER BY c.created_at, c.call_id", [version.fingerprints, sorted(ids)])
    names = [d[0] for d in cur.description]
    found = []
    for r in cur.fetchall():
        call = dict(zip(names, r))
        call["served_rows"] = json.loads(call["served_rows"] or "[]")
        call["request"] = _request_text(call.pop("request"))
        call["response"] = _response_text(call.pop("response"))
        call["created_at"] = str(call["created_at"])[:23]
        found.append(call)
    return found


def _request_text(raw: str | None) -> str | None:
    if not raw:
        return None
    req = json.loads(raw)
    if req.get("messages"):
        return "\n\n".join(_message(m) for m in req["messages"])
    return req.get("prompt") if isinstance(req.get("prompt"), str) else json.dumps(req, indent=1)


def _message(m: Any) -> str:
    """A chat message as stored in a request: ``[role, content]`` or ``{role, content}``."""
    role, content = (m.get("role"), m.get("content")) if isinstance(m, dict) else (m[0], m[1])
    return f"[{role}]\n{content}"


def _response_text(raw: str | None) -> str | None:
    if not raw:
        return None
    resp = json.loads(raw)
    return resp.get("text") if isinstance(resp, dict) else str(resp)


def store_error_is_busy(exc: StoreError) -> bool:
    """A compile holds the store (DuckDB's file lock): worth retrying, not an error."""
    return "in use" in str(exc)
