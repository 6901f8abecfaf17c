"""The store: migrations to head, read-only opening, atomic stage commits."""

from __future__ import annotations

import json

import polars as pl
import pytest

from compiler.errors import StoreError
from compiler.store import outputs
from compiler.store.db import Store, migrations
from tests.old_stores import store_at_migration


def test_empty_store_migrates_to_head_and_is_idempotent(tmp_path):
    path = tmp_path / "s.duckdb"
    with Store.open(path) as store:
        assert store.schema_version() == len(migrations())
        assert store.migrate() == []
        for table in ("stage_outputs", "rejections", "versions", "llm_cache", "llm_calls", "exec_cache"):
            assert store.table_exists(table)


def test_readonly_needs_an_existing_store(tmp_path):
    with pytest.raises(StoreError, match="no store here"):
        Store.open_readonly(tmp_path / "missing.duckdb")
    assert not (tmp_path / "missing.duckdb").exists()


def test_a_store_from_a_newer_distillc_is_refused_for_reading_and_writing(tmp_path):
    path = tmp_path / "s.duckdb"
    with Store.open(path) as store:
        store.con.execute("INSERT INTO schema_migrations VALUES (?, 'from-the-future', now())", [len(migrations()) + 5])
    before = path.read_bytes()
    for opener in (Store.open, Store.open_readonly):
        with pytest.raises(StoreError, match=rf"schema is at {len(migrations()) + 5}, newer than this distillc knows"):
            opener(path)
    assert path.read_bytes() == before                    # refused without touching the file


def test_readonly_refuses_writes(tmp_path):
    path = tmp_path / "s.duckdb"
    Store.open(path).close()
    with Store.open_readonly(path) as store:
        with pytest.raises(Exception):
            store.con.execute("INSERT INTO corpora VALUES ('x', now())")


def _meta(fp: str) -> outputs.OutputMeta:
    return outputs.OutputMeta(fp, "s", "filter", 1, {}, [], 2, 2, 0.1)


def test_stage_commit_is_atomic(tmp_path):
    frame = pl.DataFrame({"row_id": ["a", "b"], "parent_ids": [[], []], "x": [None, None]})
    with Store.open(tmp_path / "s.duckdb") as store:
        outputs.commit_output(store, _meta("f1"), frame, None)
        assert outputs.has_output(store, "f1")
        assert outputs.load_output(store, "f1")["row_id"].to_list() == ["a", "b"]
        # a second commit of the same fingerprint fails inside the transaction: nothing of it remains
        bad = pl.DataFrame({"row_id": ["c"], "task_id": ["t"], "reason": ["r"], "detail": [None]})
        with pytest.raises(Exception):
            outputs.commit_output(store, _meta("f1"), frame, bad)
        assert store.con.execute("SELECT count(*) FROM rejections").fetchone()[0] == 0
        assert store.con.execute("SELECT count(*) FROM stage_outputs").fetchone()[0] == 1


def test_the_execution_cache_of_an_older_store_survives_its_move_to_an_append_only_table(tmp_path):
    from compiler.store.exec_cache import StoreExecCache
    from evals.sandbox import ExecResult, Status

    path = tmp_path / "v6.duckdb"
    con = store_at_migration(path, 6)
    kept = ExecResult(status=Status.PASSED, passed=True, n_passed=2, n_total=2)
    con.execute("INSERT INTO exec_cache VALUES ('old-key', ?, now())", [json.dumps(kept.to_dict())])
    con.close()
    with Store.open(str(path)) as store:
        assert store.schema_version() == len(migrations()) >= 7
        cache = StoreExecCache(store)
        assert cache.get_many(["old-key", "unknown"]) == {"old-key": kept}
        other = ExecResult(status=Status.FAILED, passed=False, n_passed=0, n_total=2)
        cache.put_many({"new-key": other})
        cache.put_many({"new-key": other})          # stored twice (a race): read back once
        assert cache.get_many(["new-key", "old-key"]) == {"new-key": other, "old-key": kept}
        assert store.con.execute("SELECT count(*) FROM exec_cache").fetchall()[0][0] == 3
