"""Stage outputs keyed by fingerprint, written a partition at a time, and the rejections that go with
them.

A stage is written in partitions. Each partition's rows, its rejections and its row in
``stage_partitions`` are committed in one transaction, so a crash loses at most the partition being
computed and a resumed run skips the committed ones. The stage counts as done only when its marker
row in ``stage_outputs`` is committed (with the views that read it), after its last partition.

Layouts (``stage_outputs.layout``):

- ``delta``: table ``sd_<fp>`` holds ``row_id``, ``parent_ids``, ``_pos`` (the row's order key),
  ``_base`` (the row of the parent stage's output it carries columns from: itself when it kept its
  id, else its parent) and only the columns the stage wrote; every other column is read from
  ``_base`` through the views;
- ``full``: table ``sd_<fp>`` holds every column (sources, records, stages whose rows do not
  descend from their input's);
- ``legacy``: a table ``so_<fp>`` written before partitions existed, in insertion order.

Every done stage is read through ``so_<fp>`` (a view, or the legacy table): the output's columns,
in order. ``sp_<fp>`` is the same with ``_pos``, for reading ranges.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import polars as pl

from compiler.store.db import Store

POS, BASE = "_pos", "_base"
KEYS = ("row_id", "parent_ids")
PART_SHIFT = 32          # _pos = part << 32 | row index within the partition's output


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
    layout: str = "full"
    columns: list[str] = field(default_factory=list)


def table_name(fp: str) -> str:
    """The relation a done stage's rows are read from (a view, or a legacy table)."""
    return f"so_{fp}"


def data_table(fp: str) -> str:
    return f"sd_{fp}"


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def has_output(store: Store, fp: str) -> bool:
    return store.con.execute("SELECT count(*) FROM stage_outputs WHERE fingerprint = ?", [fp]).fetchall()[0][0] > 0


def cached_fingerprints(store: Store, fps: list[str]) -> set[str]:
    if not fps:
        return set()
    rows = store.con.execute(
        "SELECT fingerprint FROM stage_outputs WHERE list_contains(?, fingerprint)", [fps]).fetchall()
    return {r[0] for r in rows}


def layout_of(store: Store, fp: str) -> str | None:
    row = store.con.execute("SELECT layout FROM stage_outputs WHERE fingerprint = ?", [fp]).fetchall()
    return row[0][0] if row else None


def positioned(store: Store, fp: str) -> str:
    """SQL for a done stage's rows with their ``_pos`` order key."""
    if layout_of(store, fp) == "legacy":
        return f"(SELECT rowid AS {POS}, * FROM {table_name(fp)})"
    return f"sp_{fp}"


def load_output(store: Store, fp: str) -> pl.DataFrame:
    return store.con.sql(f"SELECT * FROM {table_name(fp)}").pl()


def output_columns(store: Store, fp: str) -> list[str]:
    return [r[0] for r in store.con.execute(f"DESCRIBE {table_name(fp)}").fetchall()]


def output_rows(store: Store, fp: str) -> int:
    rows = store.con.execute("SELECT rows_out FROM stage_outputs WHERE fingerprint = ?", [fp]).fetchall()
    return int(rows[0][0]) if rows else 0


def _storable(frame: pl.DataFrame) -> pl.DataFrame:
    """Columns of the Null dtype (all values missing) have no SQL type: store them as strings."""
    casts = [pl.col(c).cast(pl.String) for c, t in frame.schema.items() if t == pl.Null]
    return frame.with_columns(casts) if casts else frame


# -- writing a stage a partition at a time ----------------------------------------------------------

def begin_stage(store: Store, fp: str, *, layout: str, parent: str | None, partition_rows: int) -> tuple[str, int, set[int]]:
    """Start (or resume) writing stage ``fp``: its layout and partition size (the first run's, when
    resuming) and the partitions already committed."""
    row = store.con.execute("SELECT layout, partition_rows FROM stage_runs WHERE fingerprint = ?", [fp]).fetchall()
    if row:
        layout, partition_rows = row[0][0], int(row[0][1])
    else:
        with store.transaction() as con:
            con.execute("INSERT INTO stage_runs VALUES (?, ?, ?, ?, NULL, now())", [fp, layout, parent, partition_rows])
    done = {int(r[0]) for r in store.con.execute(
        "SELECT part FROM stage_partitions WHERE fingerprint = ?", [fp]).fetchall()}
    return layout, partition_rows, done


def run_columns(store: Store, fp: str) -> list[str]:
    """The output columns recorded so far for a stage being written."""
    row = store.con.execute("SELECT columns FROM stage_runs WHERE fingerprint = ?", [fp]).fetchall()
    return json.loads(row[0][0]) if row and row[0][0] else []


def stored_columns(store: Store, fp: str) -> list[str]:
    """The columns the data table of a stage being run holds so far (none before its first partition)."""
    table = data_table(fp)
    if not store.table_exists(table):
        return []
    return [r[0] for r in store.con.execute(f"DESCRIBE {table}").fetchall()]


def commit_partition(store: Store, fp: str, part: int, rows: pl.DataFrame, rejected: pl.DataFrame | None,
                     *, rows_in: int, seconds: float, columns: list[str] | None = None,
                     parent: str | None = None) -> None:
    """A partition's stored rows (with ``_pos``), its rejections, its marker and the output's column
    list (``columns``: the partition's output columns, merged into the run's), in one transaction.
    A delta column that first appears in this partition is filled in for the earlier partitions'
    rows from their base rows in ``parent``'s output (what they carried)."""
    rows = _storable(rows)
    table = data_table(fp)
    known = run_columns(store, fp)
    merged = known + [c for c in (columns or []) if c not in known]
    with store.transaction() as con:
        if merged != known:
            con.execute("UPDATE stage_runs SET columns = ? WHERE fingerprint = ?", [json.dumps(merged), fp])
        con.register("_part", rows.to_arrow())
        if not store.table_exists(table):
            con.execute(f"CREATE TABLE {table} AS SELECT * FROM _part")
        else:
            added = _add_missing_columns(con, table, rows)
            if added and parent is not None:
                sets = ", ".join(f"{q(c)} = p.{q(c)}" for c in added)
                con.execute(f"UPDATE {table} SET {sets} FROM {positioned(store, parent)} p "
                            f"WHERE {table}.{BASE} = p.row_id")
            con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _part")
        con.unregister("_part")
        _insert_rejections(con, fp, rejected)
        con.execute("INSERT INTO stage_partitions VALUES (?, ?, ?, ?, ?, now())",
                    [fp, part, rows_in, rows.height, seconds])


def _add_missing_columns(con, table: str, rows: pl.DataFrame) -> list[str]:
    have = {r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()}
    added = []
    for name in rows.columns:
        if name not in have:
            sql_type = con.execute(f"SELECT typeof({q(name)}) FROM _part LIMIT 1").fetchall()
            con.execute(f"ALTER TABLE {table} ADD COLUMN {q(name)} {sql_type[0][0] if sql_type else 'VARCHAR'}")
            added.append(name)
    return added


def _insert_rejections(con, fp: str, rejected: pl.DataFrame | None) -> None:
    if rejected is not None and rejected.height:
        con.register("_rejected", _storable(rejected).to_arrow())
        con.execute("INSERT INTO rejections SELECT ?, row_id, task_id, reason, detail FROM _rejected", [fp])
        con.unregister("_rejected")


def finish_stage(store: Store, meta: OutputMeta, parent: str | None) -> None:
    """The views over the stage's rows and its done marker, in one transaction. A stage that
    produced no rows at all still gets a table of its columns."""
    fp, table = meta.fingerprint, data_table(meta.fingerprint)
    parts = store.con.execute("SELECT coalesce(sum(rows_in), 0), coalesce(sum(rows_out), 0), "
                              "coalesce(sum(seconds), 0) FROM stage_partitions WHERE fingerprint = ?",
                              [fp]).fetchall()[0]
    with store.transaction() as con:
        if not store.table_exists(table):
            con.execute(f"CREATE TABLE {table} ({POS} BIGINT, {', '.join(f'{q(c)} VARCHAR' for c in meta.columns)})")
        con.execute(_positioned_view(store, meta, parent))
        cols = ", ".join(q(c) for c in meta.columns)
        con.execute(f"CREATE VIEW {table_name(fp)} AS SELECT {cols} FROM sp_{fp} ORDER BY {POS}")
        con.execute("INSERT INTO stage_outputs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now(), ?, ?)",
                    [fp, meta.stage, meta.uses, meta.stage_version, json.dumps(meta.params),
                     json.dumps(meta.parents), table_name(fp), int(parts[0]), int(parts[1]),
                     float(parts[2]) or meta.seconds, meta.layout, json.dumps(meta.columns)])


def _positioned_view(store: Store, meta: OutputMeta, parent: str | None) -> str:
    fp, table = meta.fingerprint, data_table(meta.fingerprint)
    if meta.layout == "full":
        cols = ", ".join(q(c) for c in meta.columns)
        return f"CREATE VIEW sp_{fp} AS SELECT {POS}, {cols} FROM {table}"
    stored = {r[0] for r in store.con.execute(f"DESCRIBE {table}").fetchall()}
    select = ", ".join(f"d.{q(c)}" if c in stored else f"p.{q(c)}" for c in meta.columns)
    return (f"CREATE VIEW sp_{fp} AS SELECT d.{POS}, {select} FROM {table} d "
            f"LEFT JOIN {positioned(store, parent)} p ON d.{BASE} = p.row_id")


def materialize(store: Store, fp: str, name: str) -> None:
    """A done stage's rows with ``_pos`` (what ``sp_<fp>`` reads) in the temporary table ``name``,
    built one join at a time: the first stage of its delta chain that is stored whole, then each
    delta stage's columns joined onto the level below it (a temporary table dropped once used).
    The views join the whole chain in one query, whose hash tables DuckDB cannot all spill: at a
    million wide rows under its memory cap that query runs out of memory, one join at a time does
    not."""
    chain = []
    while layout_of(store, fp) == "delta":
        chain.append(fp)
        fp = store.con.execute("SELECT parent FROM stage_runs WHERE fingerprint = ?", [fp]).fetchall()[0][0]
    below = name if not chain else f"{name}_l0"
    store.con.execute(f"CREATE OR REPLACE TEMP TABLE {below} AS SELECT * FROM {positioned(store, fp)}")
    for i, top in enumerate(reversed(chain), start=1):
        target = name if i == len(chain) else f"{name}_l{i}"
        columns = json.loads(store.con.execute("SELECT columns FROM stage_outputs WHERE fingerprint = ?",
                                               [top]).fetchall()[0][0])
        stored = {r[0] for r in store.con.execute(f"DESCRIBE {data_table(top)}").fetchall()}
        select = ", ".join(f"d.{q(c)}" if c in stored else f"p.{q(c)}" for c in columns)
        store.con.execute(f"CREATE OR REPLACE TEMP TABLE {target} AS SELECT d.{POS}, {select} "
                          f"FROM {data_table(top)} d LEFT JOIN {below} p ON d.{BASE} = p.row_id")
        store.con.execute(f"DROP TABLE {below}")
        below = target


def commit_output(store: Store, meta: OutputMeta, frame: pl.DataFrame, rejected: pl.DataFrame | None) -> None:
    """A whole stage in one go (one partition, full layout): rows, rejections, views and marker."""
    rows = frame.with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias(POS))
    full = OutputMeta(**{**meta.__dict__, "layout": "full", "columns": list(frame.columns)})
    _, _, done = begin_stage(store, meta.fingerprint, layout="full", parent=None, partition_rows=max(1, frame.height))
    if 0 not in done:
        commit_partition(store, meta.fingerprint, 0, rows, rejected, rows_in=meta.rows_in, seconds=meta.seconds,
                         columns=list(frame.columns))
    finish_stage(store, full, None)


# -- reading ---------------------------------------------------------------------------------------

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
