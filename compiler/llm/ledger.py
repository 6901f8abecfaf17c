"""Read-side queries over the call ledger, for ``distillc cost``, ``plan --estimate`` and reports.

Every function takes a DuckDB connection (read-only is fine) and optionally restricts itself to a set
of stage fingerprints (the stages of one corpus version). Totals are sums of ledger rows, so they
equal the ledger by construction: ``cache_hit`` rows are $0, and ``interrupted`` rows (calls sent
whose answer was never recorded because the process died: the server may or may not have billed
them) are counted apart, with the bound of what they could have cost (``max_usd``: the request's
prompt at one token per byte and all of its ``max_tokens``). A ``pending`` row read here belongs to
a process that is no longer running (or, on a Batch API row, to a batch not yet collected) and reads
as interrupted; stores written before the journal have such rows without a bound. A ``retrying``
row (a dead process's call waiting for its next attempt, settled as ``failed`` by the next writable
open) reads as failed.
"""

from __future__ import annotations

from typing import Any, Literal, Sequence

import duckdb

GroupBy = Literal["stage", "model", "role", "stage_fp"]

_TOTALS = """
    count(*) FILTER (WHERE status IN ('ok', 'retried', 'failed', 'retrying')) AS calls,
    count(*) FILTER (WHERE status = 'cache_hit')                          AS cache_hits,
    count(*) FILTER (WHERE status IN ('failed', 'retrying'))              AS failed,
    count(*) FILTER (WHERE status = 'retried')                            AS retried,
    count(*) FILTER (WHERE status IN ('pending', 'interrupted'))          AS interrupted,
    coalesce(sum(max_usd) FILTER (WHERE status IN ('pending', 'interrupted')), 0) AS interrupted_max_usd,
    coalesce(sum(prompt_tokens), 0)                                       AS prompt_tokens,
    coalesce(sum(cached_tokens), 0)                                       AS cached_tokens,
    coalesce(sum(completion_tokens), 0)                                   AS completion_tokens,
    coalesce(sum(reasoning_tokens), 0)                                    AS reasoning_tokens,
    coalesce(sum(usd), 0)                                                 AS usd
"""


def _where(stage_fps: Sequence[str] | None) -> tuple[str, list[Any]]:
    if stage_fps is None:
        return "", []
    return "WHERE stage_fp IN (SELECT unnest(?::VARCHAR[]))", [list(stage_fps)]


def _dicts(cur: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def totals(con: duckdb.DuckDBPyConnection, *, by: GroupBy | None = None,
           stage_fps: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Calls, cache hits, failures, tokens and dollars, overall or grouped ``by`` one column."""
    where, params = _where(stage_fps)
    if by is None:
        return _dicts(con.execute(f"SELECT {_TOTALS} FROM llm_calls {where}", params))
    if by not in ("stage", "model", "role", "stage_fp"):
        raise ValueError(f"cannot group the ledger by {by!r}")
    extra = ", backend" if by == "model" else ""
    return _dicts(con.execute(f"SELECT {by}{extra}, {_TOTALS} FROM llm_calls {where} "
                              f"GROUP BY {by}{extra} ORDER BY usd DESC, {by}", params))


def total_usd(con: duckdb.DuckDBPyConnection, stage_fps: Sequence[str] | None = None) -> float:
    where, params = _where(stage_fps)
    return float(con.execute(f"SELECT coalesce(sum(usd), 0) FROM llm_calls {where}", params).fetchone()[0])


def calls(con: duckdb.DuckDBPyConnection, stage_fps: Sequence[str] | None = None,
          limit: int | None = None) -> list[dict[str, Any]]:
    """One dict per ledger row, oldest first."""
    where, params = _where(stage_fps)
    tail = f" LIMIT {int(limit)}" if limit else ""
    return _dicts(con.execute(
        "SELECT call_id, key, backend, model, role, stage, stage_fp, status, prompt_tokens, cached_tokens, "
        "completion_tokens, reasoning_tokens, usd, price_version, latency_s, attempts, served_rows, error, "
        "batch_id, est_prompt_tokens, max_prompt_tokens, max_completion_tokens, max_usd, created_at, finished_at "
        f"FROM llm_calls {where} ORDER BY created_at, call_id{tail}", params))


def cost_by_row(con: duckdb.DuckDBPyConnection, stage_fps: Sequence[str] | None = None) -> dict[str, float]:
    """Dollars per served row id: each call's cost split evenly over the rows it served. The lineage
    walk of ``distillc cost --by example`` adds these up over an example's ancestors."""
    where, params = _where(stage_fps)
    cond = f"{where} AND" if where else "WHERE"
    rows = con.execute(
        "SELECT r.row_id, sum(c.usd / json_array_length(c.served_rows)) FROM llm_calls c, "
        "unnest(json_extract_string(c.served_rows, '$[*]')) AS r(row_id) "
        f"{cond} c.usd > 0 AND json_array_length(c.served_rows) > 0 GROUP BY r.row_id", params).fetchall()
    return {row_id: float(usd) for row_id, usd in rows}


def length_stats(con: duckdb.DuckDBPyConnection, *, stage: str | None = None, stage_fp: str | None = None,
                 model: str | None = None) -> dict[str, Any]:
    """Token lengths of past successful calls (count, mean, p10/p50/p90, max of prompt and completion
    tokens), for low/expected/high estimates of stages not yet run."""
    conds, params = ["status IN ('ok', 'retried')"], []
    for column, value in (("stage", stage), ("stage_fp", stage_fp), ("model", model)):
        if value is not None:
            conds.append(f"{column} = ?")
            params.append(value)
    parts = []
    for col in ("prompt_tokens", "completion_tokens"):
        parts.append(f"avg({col}) AS {col}_mean, quantile_cont({col}, 0.1) AS {col}_p10, "
                     f"quantile_cont({col}, 0.5) AS {col}_p50, quantile_cont({col}, 0.9) AS {col}_p90, "
                     f"max({col}) AS {col}_max")
    sql = f"SELECT count(*) AS n, {', '.join(parts)} FROM llm_calls WHERE {' AND '.join(conds)}"
    return _dicts(con.execute(sql, params))[0]


def failures(con: duckdb.DuckDBPyConnection, stage_fps: Sequence[str] | None = None) -> list[dict[str, Any]]:
    where, params = _where(stage_fps)
    return _dicts(con.execute(f"SELECT * FROM llm_failures {where} ORDER BY created_at", params))


def failure_reasons(con: duckdb.DuckDBPyConnection, stage_fps: Sequence[str] | None = None) -> dict[str, int]:
    where, params = _where(stage_fps)
    return dict(con.execute(f"SELECT reason, count(*) FROM llm_failures {where} GROUP BY reason", params).fetchall())


def interrupted(con: duckdb.DuckDBPyConnection, stage_fps: Sequence[str] | None = None) -> int:
    """Calls recorded as sent whose outcome was never recorded (the process died with them in flight)."""
    where, params = _where(stage_fps)
    cond = f"{where} AND" if where else "WHERE"
    return int(con.execute(f"SELECT count(*) FROM llm_calls {cond} status IN ('pending', 'interrupted')",
                           params).fetchone()[0])


def interrupted_calls(con: duckdb.DuckDBPyConnection, stage_fps: Sequence[str] | None = None,
                      limit: int | None = None) -> dict[str, Any]:
    """The interrupted calls with what they could have cost: totals of the estimated prompt tokens and
    of the bounds (``unbounded`` counts rows from older stores that carry no bound), and the rows
    themselves, newest first (at most ``limit``)."""
    where, params = _where(stage_fps)
    cond = f"{where} AND" if where else "WHERE"
    base = f"FROM llm_calls {cond} status IN ('pending', 'interrupted')"
    [summary] = _dicts(con.execute(
        "SELECT count(*) AS calls, coalesce(sum(est_prompt_tokens), 0) AS est_prompt_tokens, "
        "coalesce(sum(max_prompt_tokens), 0) AS max_prompt_tokens, "
        "coalesce(sum(max_completion_tokens), 0) AS max_completion_tokens, coalesce(sum(max_usd), 0) AS max_usd, "
        f"count(*) FILTER (WHERE max_usd IS NULL) AS unbounded {base}", params))
    tail = f" LIMIT {int(limit)}" if limit else ""
    summary["rows"] = _dicts(con.execute(
        "SELECT call_id, stage, role, model, batch_id, attempts, est_prompt_tokens, max_prompt_tokens, "
        f"max_completion_tokens, max_usd, created_at AS sent_at {base} ORDER BY created_at DESC, call_id{tail}",
        params))
    return summary
