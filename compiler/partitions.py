"""Running one stage out of core: its input read from the store a partition at a time, its output
appended back a partition at a time.

- A ``row`` stage runs on consecutive ranges of its input rows; a ``task`` stage on ranges cut at task
  boundaries (when each task's rows are contiguous; else, like a ``frame`` stage, on all rows); a
  ``frame`` stage sees every row; one that declares ``reads_declared_only`` (``dedup``) gets only the
  columns it declares (plus the row keys).
- The input is the parent's output, materialised once per stage (one join at a time down its chain
  of delta stages) in a temporary table with a dense ``_pos`` (DuckDB spills it to disk beyond its
  memory limit), so each partition is a range scan.
- A partition's output is stored as the columns the stage wrote (``delta``) with, per row, the input
  row it carries its other columns from (``_base``: the row itself, or for a new row its first
  parent); a column the stage did not declare but whose values differ from the base rows' (a new
  row's own instruction, say) is stored too, so the declarations bound what is stored, never what
  is right. A stage whose output replaces its input (records) or whose rows do not descend from its
  input rows is stored whole (``full``). With ``DISTILLC_CHECK_STORAGE=1`` each delta partition is
  read back and compared with what the stage returned (the test suite turns it on).
- The partition size is fixed when a stage starts (``partition_rows`` in the recipe, ``--partition-rows``,
  else sized from the input's bytes per row: about 8 MB, 1,000 to 20,000 rows), so a resumed run cuts the same partitions and skips
  those already committed.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import polars as pl

from compiler.store import outputs
from compiler.store.outputs import BASE, POS, q

if TYPE_CHECKING:
    from compiler.plan import Step
    from compiler.stages.base import StageOutput
    from compiler.store.db import Store

KEY_COLUMNS = ("row_id", "parent_ids", "task_id")
TARGET_PARTITION_BYTES = 8 << 20       # what one partition's input may weigh (Arrow bytes)
MIN_ROWS, MAX_ROWS = 1_000, 20_000


@dataclass(frozen=True)
class Partition:
    index: int
    lo: int        # first input _pos
    hi: int        # one past the last


def input_table(store: "Store", step: "Step") -> tuple[str, int]:
    """The parent's output in a temporary table with a dense ``_pos`` (0 to rows - 1, in the
    output's order); its row count.

    The output is first materialised one join at a time (:func:`outputs.materialize`). A stored
    ``_pos`` is ``part << 32 | index``, the index dense within each part, so the dense key is the
    part's offset plus the index: a projection, with no sort or window over the whole output
    (neither spills gracefully at millions of wide rows under DuckDB's memory cap); reads of a
    range order it themselves. Outputs whose keys are not dense per part (none written by this
    version) are numbered by a window instead."""
    import pyarrow as pa

    name, whole = f"si_{step.fingerprint}", f"sw_{step.fingerprint}"
    outputs.materialize(store, step.parent, whole)
    try:
        mask = (1 << outputs.PART_SHIFT) - 1
        parts = store.con.execute(f"SELECT {POS} >> {outputs.PART_SHIFT}, count(*), max({POS} & {mask}) "
                                  f"FROM {whole} GROUP BY 1 ORDER BY 1").fetchall()
        if all(n == top + 1 for _, n, top in parts):
            starts, total = [], 0
            for _, n, _ in parts:
                starts.append(total)
                total += n
            store.con.register("_part_offsets", pa.table({"part": [p for p, _, _ in parts], "off": starts}))
            try:
                store.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT o.off + (s.{POS} & {mask}) "
                                  f"AS {POS}, s.* EXCLUDE ({POS}) FROM {whole} s JOIN _part_offsets o "
                                  f"ON s.{POS} >> {outputs.PART_SHIFT} = o.part")
            finally:
                store.con.unregister("_part_offsets")
        else:
            store.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT row_number() OVER (ORDER BY {POS}) "
                              f"- 1 AS {POS}, * EXCLUDE ({POS}) FROM {whole} ORDER BY {POS}")
    finally:
        store.con.execute(f"DROP TABLE IF EXISTS {whole}")
    return name, int(store.con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0])


def partition_rows(store: "Store", table: str, rows: int, requested: int | None) -> int:
    """The requested size, else one sized so a partition's input weighs about 8 MB (1,000 to 20,000 rows)."""
    if requested is not None:
        return requested
    if rows == 0:
        return MIN_ROWS
    sample = store.con.sql(f"SELECT * EXCLUDE ({POS}) FROM {table} LIMIT 1000").arrow().read_all()
    per_row = max(1, sample.nbytes // max(1, sample.num_rows))
    return int(min(MAX_ROWS, max(MIN_ROWS, TARGET_PARTITION_BYTES // per_row)))


def plan_partitions(store: "Store", table: str, rows: int, size: int, scope: str) -> list[Partition]:
    if rows == 0 or scope == "frame":
        return [Partition(0, 0, max(rows, 1))]
    cuts = list(range(0, rows, size))
    if scope == "task":
        starts = task_starts(store, table)
        if starts is None:
            return [Partition(0, 0, rows)]
        cuts = sorted({_snap(c, starts) for c in cuts})
    bounds = cuts + [rows]
    return [Partition(i, lo, hi) for i, (lo, hi) in enumerate(zip(bounds, bounds[1:])) if hi > lo]


def task_starts(store: "Store", table: str) -> list[int] | None:
    """Where each task's rows begin, when every task's rows are contiguous (else None)."""
    starts = [r[0] for r in store.con.execute(
        f"SELECT {POS} FROM (SELECT {POS}, task_id, lag(task_id) OVER (ORDER BY {POS}) AS prev FROM {table}) "
        f"WHERE prev IS DISTINCT FROM task_id ORDER BY {POS}").fetchall()]
    distinct = store.con.execute(f"SELECT count(DISTINCT task_id) FROM {table}").fetchall()[0][0]
    return starts if len(starts) == distinct else None


def _snap(cut: int, starts: list[int]) -> int:
    import bisect

    i = bisect.bisect_left(starts, cut)
    return starts[i] if i < len(starts) else starts[-1]


def read(store: "Store", table: str, part: Partition, columns: list[str] | None) -> pl.DataFrame:
    cols = ", ".join(q(c) for c in columns) if columns is not None else f"* EXCLUDE ({POS})"
    return store.con.sql(f"SELECT {cols} FROM {table} WHERE {POS} >= {part.lo} AND {POS} < {part.hi} "
                         f"ORDER BY {POS}").pl()


def delta_rows(inp: pl.DataFrame, out: pl.DataFrame, part: int, writes: set[str],
               keep: set[str] = frozenset()) -> pl.DataFrame | None:
    """What a delta stage stores of ``out``: keys, order, base row, the columns it wrote, those it
    made (absent from ``inp``), those whose values differ from the base rows', and ``keep`` (the
    columns earlier partitions stored). When some row has no base in ``inp`` (its parents were not
    kept), every column is stored."""
    bases = base_rows(set(inp["row_id"].to_list()), out["row_id"].to_list(), out["parent_ids"].to_list())
    if any(b is None for b in bases):
        keep = set(out.columns)
    base = pl.Series(BASE, bases, dtype=pl.String)
    carried = [c for c in out.columns if c in inp.columns and c not in writes and c not in keep
               and c not in ("row_id", "parent_ids")]
    changed: set[str] = set()
    if carried:
        aligned = pl.DataFrame([base]).join(inp.select(["row_id", *carried]), left_on=BASE, right_on="row_id",
                                            how="left", maintain_order="left")
        changed = {c for c in carried if not out[c].equals(aligned[c], null_equal=True)}
    stored = [c for c in out.columns if c in writes or c in keep or c in changed or c not in inp.columns
              or c in ("row_id", "parent_ids")]
    return out.select(stored).with_columns(base, positions(part, out.height))


def base_rows(ids: set[str], rows: list[str], parents: list[list[str] | None]) -> list[str | None]:
    """Each output row's base in the input: itself when it is an input row, else the base of its
    first parent (an input row, or an output row made from one: a chain of evolutions); None for a
    row that leads to no input row."""
    first = {rid: (ps[0] if ps else None) for rid, ps in zip(rows, parents)}
    found: dict[str, str] = {}

    def base(rid: str) -> str | None:
        seen = []
        while rid not in ids and rid not in found:
            seen.append(rid)
            rid = first.get(rid)
            if rid is None or rid in seen:
                return None
        b = rid if rid in ids else found[rid]
        for r in seen:
            found[r] = b
        return b

    return [base(rid) for rid in rows]


def positions(part: int, n: int) -> pl.Series:
    return pl.Series(POS, [(part << outputs.PART_SHIFT) | i for i in range(n)], dtype=pl.Int64)


def check_storage(store: "Store", step: "Step", parent: str, stored: pl.DataFrame, out: pl.DataFrame) -> None:
    """Read the stored partition back through its base rows and compare with what the stage returned."""
    store.con.register("_check", stored.to_arrow())
    try:
        rebuilt = store.con.sql(
            "SELECT " + ", ".join(f"d.{q(c)}" if c in stored.columns else f"p.{q(c)}" for c in out.columns)
            + f" FROM _check d LEFT JOIN {outputs.positioned(store, parent)} p ON d.{BASE} = p.row_id "
            f"ORDER BY d.{POS}").pl()
    finally:
        store.con.unregister("_check")
    if not rebuilt.equals(out.select(rebuilt.columns), null_equal=True):
        bad = [c for c in out.columns if not rebuilt[c].equals(out[c], null_equal=True)]
        raise AssertionError(f"stage {step.name!r} changed columns it does not declare as written: {bad}")


def checking() -> bool:
    return os.environ.get("DISTILLC_CHECK_STORAGE", "") not in ("", "0")


@dataclass
class StageRun:
    """One stage being run over its partitions (see the module docstring)."""

    store: "Store"
    step: "Step"
    run_partition: Callable[[pl.DataFrame], "StageOutput"]
    requested_rows: int | None = None
    ray: Any = None             # a RaySession: pure row-wise stages then run as Ray Data map_batches
    base_dir: str = "."

    def run(self) -> str:
        """Run every partition not yet committed; returns the stage's layout."""
        cls, params = self.step.cls, self.step.params
        cols = cls.columns(params)
        scope = cls.scope_for(params)
        layout = "full" if cols.replaces or cls.storage == "full" else "delta"
        table, rows = input_table(self.store, self.step)
        try:
            size = partition_rows(self.store, table, rows, self.requested_rows)
            layout, size, done = outputs.begin_stage(self.store, self.step.fingerprint, layout=layout,
                                                    parent=self.step.parent, partition_rows=size)
            columns = self._columns(table, scope, cols)
            writes = {c.name for c in cols.writes}
            todo = [p for p in plan_partitions(self.store, table, rows, size, scope) if p.index not in done]
            if self.ray is not None and self._pure(scope):
                self._remote(table, todo, layout, writes)
            else:
                for part in todo:
                    self._one(table, part, columns, layout, writes)
            return layout
        finally:
            self.store.con.execute(f"DROP TABLE IF EXISTS {table}")

    def _columns(self, table: str, scope: str, cols: Any) -> list[str] | None:
        """The columns a frame stage reads (keys first); None: all of them."""
        if scope != "frame" or not self.step.cls.reads_declared_only:
            return None
        wanted = {*KEY_COLUMNS, *(c.name for c in (*cols.reads, *cols.any_of, *cols.optional))}
        return [c for c in _table_columns(self.store, table) if c in wanted]

    def _pure(self, scope: str) -> bool:
        cls = self.step.cls
        return scope == "row" and not cls.roles and not cls.sandbox

    def _remote(self, table: str, todo: list[Partition], layout: str, writes: set[str]) -> None:
        """Windows of partitions through Ray Data, committed in order."""
        from compiler.ray_exec import PURE_WINDOW
        from compiler.stages.base import StageOutput

        window = PURE_WINDOW * self.ray.workers
        for lo in range(0, len(todo), window):
            parts = todo[lo:lo + window]
            started = time.perf_counter()
            frames = [read(self.store, table, part, None) for part in parts]
            results = self.ray.map_pure(self.step.cls(self.step.params), frames, self.base_dir)
            seconds = (time.perf_counter() - started) / len(parts)
            for part, inp, (frame, rejected) in zip(parts, frames, results):
                self._store(part, inp, StageOutput(frame, rejected if rejected.width else None), None, layout,
                            writes, table, seconds)

    def _one(self, table: str, part: Partition, columns: list[str] | None, layout: str, writes: set[str]) -> None:
        started = time.perf_counter()
        inp = read(self.store, table, part, columns)
        out = self.run_partition(inp)
        self._store(part, inp, out, columns, layout, writes, table, time.perf_counter() - started)

    def _store(self, part: Partition, inp: pl.DataFrame, out: "StageOutput", columns: list[str] | None,
               layout: str, writes: set[str], table: str, seconds: float) -> None:
        frame = out.frame
        keep = set(outputs.stored_columns(self.store, self.step.fingerprint)) if layout == "delta" else set()
        stored = delta_rows(inp, frame, part.index, writes, keep) if layout == "delta" else None
        if stored is None:
            stored = frame.with_columns(positions(part.index, frame.height))
        elif checking():
            check_storage(self.store, self.step, self.step.parent, stored, frame)
        full_columns = list(frame.columns)
        if columns is not None and layout == "delta":   # a pruned frame stage carries the input's others
            have = _table_columns(self.store, table)
            full_columns = have + [c for c in frame.columns if c not in have]
        outputs.commit_partition(self.store, self.step.fingerprint, part.index, stored, out.rejected,
                                 rows_in=inp.height, seconds=seconds, columns=full_columns,
                                 parent=self.step.parent if layout == "delta" else None)


def _table_columns(store: "Store", table: str) -> list[str]:
    return [r[0] for r in store.con.execute(f"DESCRIBE {table}").fetchall() if r[0] != POS]

