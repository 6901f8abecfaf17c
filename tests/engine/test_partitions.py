"""Out-of-core compiles: partitions of any size give the same corpus, a killed compile resumes at the
first unfinished partition, stages store only the columns they add, and stores written before
partitions existed are read and built on."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import polars as pl
import pytest

from compiler.runner import compile_recipe
from compiler.store import outputs
from compiler.store.db import Store
from compiler.store.versions import resolve
from tests.old_stores import store_at_migration
from tests.compiler.conftest import ROOT, STARTER, reference_answerer, run_cli, starter_tasks
from tests.loopback import LoopbackServer

STAND = """\
name: parts
sources:
  - kind: jsonl
    path: {tasks}
    limit: {limit}
teacher:
  backend: openai
  model: gpt-4o-mini
  base_url: {url}
  max_concurrency: {conc}
stages:
  - uses: teacher_answer
    with: {{n: 2, temperature: 0.5}}
  - uses: extract_code
  - uses: execute
  - uses: filter
    with: {{max_per_task: 1}}
  - uses: dedup
  - uses: format
"""


def recipe(tmp_path, url, *, limit=12, conc=8):
    path = tmp_path / "parts.yaml"
    path.write_text(STAND.format(tasks=STARTER, limit=limit, url=url, conc=conc))
    return path


def corpus(store) -> list[tuple]:
    with Store.open_readonly(str(store)) as st:
        v = resolve(st, "parts")
        rows = outputs.load_output(st, v.fingerprint)
    return [tuple(r) for r in rows.select("row_id", "prompt", "completion", "variant").iter_rows()]


@pytest.mark.parametrize("size", [1, 3, 7])
def test_any_partition_size_gives_the_same_corpus(size, tmp_path, teacher_server):
    one = compile_recipe(recipe(tmp_path, teacher_server.url), str(tmp_path / "one.duckdb"), partition_rows=10_000)
    many = compile_recipe(recipe(tmp_path, teacher_server.url), str(tmp_path / "many.duckdb"), partition_rows=size)
    assert many.version.fingerprint == one.version.fingerprint
    assert corpus(tmp_path / "many.duckdb") == corpus(tmp_path / "one.duckdb")
    with Store.open_readonly(str(tmp_path / "many.duckdb")) as st:
        parts = dict(st.con.execute("SELECT stage, count(*) FROM stage_partitions p JOIN stage_outputs o "
                                    "USING (fingerprint) GROUP BY stage").fetchall())
    assert parts["teacher_answer"] == -(-12 // size) and parts["dedup"] == 1      # dedup needs every row
    assert parts["execute"] == -(-24 // size)


def test_a_stage_stores_only_the_columns_it_adds(tmp_path, teacher_server):
    compile_recipe(recipe(tmp_path, teacher_server.url), str(tmp_path / "s.duckdb"))
    with Store.open_readonly(str(tmp_path / "s.duckdb")) as st:
        v = resolve(st, "parts")
        fp = {s["name"]: s["fingerprint"] for s in v.stages}
        stored = {r[0] for r in st.con.execute(f"DESCRIBE {outputs.data_table(fp['execute'])}").fetchall()}
        shown = set(outputs.output_columns(st, fp["execute"]))
        layouts = dict(st.con.execute("SELECT stage, layout FROM stage_outputs").fetchall())
    assert stored == {"row_id", "parent_ids", "_pos", "_base", "exec_passed", "exec_status", "exec_feedback",
                      "exec_n_passed", "exec_n_total", "exec_detail", "exec_isolation"}
    assert {"instruction", "answer", "code", "tests", "exec_passed"} <= shown       # the view carries the rest
    assert layouts["format"] == "full" and layouts["execute"] == "delta" and layouts["sources"] == "full"


def test_a_stage_input_is_built_one_join_at_a_time_and_reads_as_the_view(tmp_path, teacher_server):
    """``materialize`` (the next stage's input, one join per delta stage) holds exactly what the
    view over the whole chain reads, for every stage of the version, and leaves no temporary table."""
    compile_recipe(recipe(tmp_path, teacher_server.url), str(tmp_path / "m.duckdb"), partition_rows=3)
    with Store.open(str(tmp_path / "m.duckdb")) as st:
        v = resolve(st, "parts")
        deltas = [s for s in v.stages if outputs.layout_of(st, s["fingerprint"]) == "delta"]
        assert len(deltas) >= 3                       # a chain: extract_code on teacher_answer on ...
        for s in v.stages:
            fp = s["fingerprint"]
            outputs.materialize(st, fp, "_m")
            built = st.con.sql("SELECT * FROM _m ORDER BY _pos").pl()
            viewed = st.con.sql(f"SELECT * FROM {outputs.positioned(st, fp)} ORDER BY _pos").pl()
            assert built.columns == viewed.columns and built.equals(viewed, null_equal=True), s["name"]
            st.con.execute("DROP TABLE _m")
        temps = st.con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()
        assert temps == []


def test_the_partition_size_is_not_part_of_the_recipe_identity(tmp_path, teacher_server, store):
    first = compile_recipe(recipe(tmp_path, teacher_server.url), str(store), partition_rows=2)
    again = compile_recipe(recipe(tmp_path, teacher_server.url), str(store), partition_rows=50)
    assert again.version.version == first.version.version and again.stages_run == [] and again.llm_calls == 0


def test_bad_partition_sizes_are_one_line(tmp_path, teacher_server, store):
    r = run_cli("compile", recipe(tmp_path, teacher_server.url), "--store", store, "--partition-rows", "0")
    assert r.code == 1 and r.err.strip().splitlines() == [
        "distillc: error: distillc compile: argument --partition-rows: must be at least 1, got 0"]
    bad = tmp_path / "zero.yaml"
    bad.write_text(recipe(tmp_path, teacher_server.url).read_text() + "partition_rows: 0\n")
    r = run_cli("compile", bad, "--store", store)
    assert r.code == 1 and "partition_rows: Input should be greater than or equal to 1" in r.err
    assert not store.exists()


# -- resuming after kill -9 ------------------------------------------------------------------------

def compile_proc(recipe_path, store, *extra):
    env = {**os.environ, "OPENAI_API_KEY": "k", "DISTILLC_PROGRESS": "0"}
    return subprocess.Popen([sys.executable, "-m", "compiler.cli", "compile", str(recipe_path), "--store", str(store),
                             "--json", *extra], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def test_a_killed_compile_resumes_at_the_first_unfinished_partition(tmp_path):
    tasks = starter_tasks()
    with LoopbackServer(answer=reference_answerer(tasks), latency=0.05) as server:
        path = recipe(tmp_path, server.url, limit=len(tasks), conc=2)
        store = tmp_path / "s.duckdb"
        proc = compile_proc(path, store, "--partition-rows", "4")
        deadline = time.monotonic() + 120
        while server.tally.answered < 30 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        with Store.open(store) as st:            # folds the journal of the killed run
            before = dict(st.con.execute("SELECT part, committed_at FROM stage_partitions p JOIN stage_runs r "
                                         "USING (fingerprint) WHERE r.parent IS NOT NULL AND p.fingerprint NOT IN "
                                         "(SELECT fingerprint FROM stage_outputs)").fetchall())
            in_flight = st.con.execute("SELECT count(*) FROM llm_calls WHERE status = 'interrupted'").fetchall()[0][0]
        assert before, "the kill came before any partition of the teacher stage was committed"
        answered = server.tally.answered
        out, err = compile_proc(path, store, "--partition-rows", "4").communicate(timeout=300)
        assert json.loads(out)["rows"] > 0, err
        with Store.open_readonly(str(store)) as st:
            after = dict(st.con.execute("SELECT part, committed_at FROM stage_partitions WHERE fingerprint = "
                                        "(SELECT fingerprint FROM stage_outputs WHERE stage = 'teacher_answer')"
                                        ).fetchall())
        assert all(after[p] == t for p, t in before.items())        # committed partitions were not redone
        # the resumed run asked only for what the killed one had not got (or had in flight)
        assert server.tally.answered - answered <= 2 * len(tasks) - (answered - in_flight)
        clean = compile_recipe(recipe(tmp_path, server.url, limit=len(tasks)), str(tmp_path / "clean.duckdb"))
    assert clean.version.fingerprint == json.loads(out)["fingerprint"]
    assert corpus(store) == corpus(tmp_path / "clean.duckdb")


# -- stores written before partitions existed --------------------------------------------------------

def legacy_store(path, frame: pl.DataFrame, fp: str) -> None:
    """A store as the layout before migration 006 wrote it: migrations 1-4, one stage's full table
    ``so_<fp>`` in insertion order, its marker row and a corpus version."""
    con = store_at_migration(path, 4)
    con.register("_f", frame.to_arrow())
    con.execute(f"CREATE TABLE so_{fp} AS SELECT * FROM _f")
    con.execute("INSERT INTO stage_outputs VALUES (?, 'sources', 'sources', 1, '{}', '[]', ?, ?, ?, 0.1, now())",
                [fp, f"so_{fp}", frame.height, frame.height])
    con.execute("INSERT INTO corpora VALUES ('old', now())")
    con.execute("INSERT INTO versions VALUES ('old', 1, ?, ?, '{}', '', NULL, '{}', ?, now())",
                [fp, json.dumps([{"name": "sources", "uses": "sources", "fingerprint": fp}]), frame.height])
    con.close()


def test_a_store_from_before_partitions_is_migrated_read_and_built_on(tmp_path, teacher_server):
    from compiler.plan import make_plan
    from compiler.recipe.loader import load_recipe
    from compiler.stages.sources import load_sources

    path = recipe(tmp_path, teacher_server.url)
    loaded = load_recipe(path)
    sources_fp = make_plan(loaded).steps[0].fingerprint
    tasks = load_sources(loaded.recipe, loaded.base_dir)
    store = tmp_path / "old.duckdb"
    legacy_store(store, tasks, sources_fp)
    shown = run_cli("show", "old", "--store", store, "--json")
    assert shown.code == 1 and "run `distillc compile` once to migrate it" in shown.err
    result = compile_recipe(path, str(store))                     # migrates, then builds on the old table
    assert "sources" in result.stages_cached and "teacher_answer" in result.stages_run
    with Store.open_readonly(str(store)) as st:
        assert outputs.layout_of(st, sources_fp) == "legacy"
        assert outputs.load_output(st, sources_fp)["task_id"].to_list() == tasks["task_id"].to_list()
    assert run_cli("show", "old", "--store", store, "--json").json()["rows"] == tasks.height
    assert corpus(store) == corpus_of_fresh(tmp_path, teacher_server)


def corpus_of_fresh(tmp_path, teacher_server) -> list[tuple]:
    compile_recipe(recipe(tmp_path, teacher_server.url), str(tmp_path / "fresh.duckdb"))
    return corpus(tmp_path / "fresh.duckdb")


# -- what a delta stage stores -----------------------------------------------------------------------

def test_a_delta_stage_stores_what_it_changed_whatever_it_declared(tmp_path):
    """Partition 0 only adds its declared column; partition 1 also rewrites an undeclared column of
    one row, makes a new row from an input row, one from that new row, and one whose parent it did
    not keep. The stored stage reads back exactly as returned: the rewritten column is stored (and
    filled in for partition 0 from its base rows), the rows of a chain carry their ancestor's other
    columns, and the orphan row is stored whole."""
    from compiler.partitions import delta_rows

    ids = pl.List(pl.String)
    base = pl.DataFrame({"row_id": ["r0", "r1", "r2", "r3"], "parent_ids": pl.Series([[]] * 4, dtype=ids),
                         "instruction": ["a", "b", "c", "d"], "tests": ["t0", "t1", "t2", "t3"]})
    parent, fp = "p" * 20, "s" * 20
    with Store.open(str(tmp_path / "s.duckdb")) as store:
        outputs.commit_output(store, outputs.OutputMeta(parent, "sources", "sources", 1, {}, [], 4, 4, 0.0), base, None)
        outputs.begin_stage(store, fp, layout="delta", parent=parent, partition_rows=2)
        parts = [pl.DataFrame({"row_id": ["r0", "r1"], "parent_ids": pl.Series([[]] * 2, dtype=ids), "instruction": ["a", "b"],
                               "tests": ["t0", "t1"], "y": [1, 2]}),
                 pl.DataFrame({"row_id": ["r2", "n1", "n2", "n3"], "parent_ids": [[], ["r3"], ["n1"], ["gone"]],
                               "instruction": ["C", "d1", "d2", "z"], "tests": ["t2", "t3", "t3", None],
                               "y": [3, 4, 5, 6]})]
        for i, (inp, out) in enumerate(zip((base[:2], base[2:]), parts)):
            keep = set(outputs.stored_columns(store, fp))
            stored = delta_rows(inp, out, i, {"y"}, keep)
            outputs.commit_partition(store, fp, i, stored, None, rows_in=inp.height, seconds=0.0,
                                     columns=list(out.columns), parent=parent)
            if i == 0:
                assert set(stored.columns) == {"row_id", "parent_ids", "y", "_base", "_pos"}
        assert "instruction" in outputs.stored_columns(store, fp)
        outputs.finish_stage(store, outputs.OutputMeta(fp, "s", "s", 1, {}, [parent], 4, 6, 0.0, layout="delta",
                                                       columns=list(parts[0].columns)), parent)
        assert outputs.load_output(store, fp).equals(pl.concat(parts), null_equal=True)
