"""Stage outputs keyed by fingerprint, and the rejections that go with them.

A stage is done when its rows, its rejections and its marker row in ``stage_outputs`` are committed
in one transaction: a crash never leaves a half-written stage that counts as done.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import polars as pl

from compiler.store.db import Store


@dataclass(frozen=True)
class OutputMeta:
    fingerprint: str
    stage: str
    uses: str
    stage_version: int
    params: dict
    parents: list[str]
    rows_in: int
    rows_out: int
    seconds: float


def table_name(fp: str) -> str:
    return f"so_{fp}"


def has_output(store: Store, fp: str) -> bool:
    return store.con.execute("SELECT count(*) FROM stage_outputs WHERE fingerprint = ?", [fp]).fetchall()[0][0] > 0


def cached_fingerprints(store: Store, fps: list[str]) -> set[str]:
    if not fps:
        return set()
    rows = store.con.execute(
        "SELECT fingerprint FROM stage_outputs WHERE list_contains(?, fingerprint)", [fps]).fetchall()
    return {r[0] for r in rows}


def load_output(store: Store, fp: str) -> pl.DataFrame:
    return store.con.sql(f"SELECT * FROM {table_name(fp)}").pl()


def output_rows(store: Store, fp: str) -> int:
    rows = store.con.execute("SELECT rows_out FROM stage_outputs WHERE fingerprint = ?", [fp]).fetchall()
    return int(rows[0][0]) if rows else 0


def _storable(frame: pl.DataFrame) -> pl.DataFrame:
    """Columns of the Null dtype (all values missing) have no SQL type: store them as strings."""
    casts = [pl.col(c).cast(pl.String) for c, t in frame.schema.items() if t == pl.Null]
    return frame.with_columns(casts) if casts else frame


def commit_output(store: Store, meta: OutputMeta, frame: pl.DataFrame,
                  rejected: pl.DataFrame | None) -> None:
    frame = _storable(frame)
    with store.transaction() as con:
        con.register("_stage_frame", frame.to_arrow())
        con.execute(f"CREATE TABLE {table_name(meta.fingerprint)} AS SELECT * FROM _stage_frame")
        con.unregister("_stage_frame")
        if rejected is not None and rejected.height:
            con.register("_rejected", _storable(rejected).to_arrow())
            con.execute("INSERT INTO rejections SELECT ?, row_id, task_id, reason, detail FROM _rejected",
                        [meta.fingerprint])
            con.unregister("_rejected")
        con.execute(
            "INSERT INTO stage_outputs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now())",
            [meta.fingerprint, meta.stage, meta.uses, meta.stage_version, json.dumps(meta.params),
             json.dumps(meta.parents), table_name(meta.fingerprint), meta.rows_in, meta.rows_out,
             meta.seconds],
        )


def rejection_counts(store: Store, fp: str) -> dict[str, int]:
    rows = store.con.execute(
        "SELECT reason, count(*) FROM rejections WHERE fingerprint = ? GROUP BY reason ORDER BY 2 DESC",
        [fp]).fetchall()
    return {r: int(n) for r, n in rows}


def load_rejections(store: Store, fp: str) -> pl.DataFrame:
    """The rejections stored with a stage output (row_id, task_id, reason, detail)."""
    rows = store.con.execute("SELECT row_id, task_id, reason, detail FROM rejections WHERE fingerprint = ? "
                             "ORDER BY rowid", [fp]).fetchall()
    return pl.DataFrame(rows, schema={"row_id": pl.String, "task_id": pl.String, "reason": pl.String,
                                      "detail": pl.String}, orient="row")


def output_info(store: Store, fp: str) -> dict | None:
    row = store.con.execute(
        "SELECT stage, uses, rows_in, rows_out, seconds, created_at FROM stage_outputs WHERE fingerprint = ?",
        [fp]).fetchall()
    if not row:
        return None
    row = row[0]
    keys = ("stage", "uses", "rows_in", "rows_out", "seconds", "created_at")
    return dict(zip(keys, row))
