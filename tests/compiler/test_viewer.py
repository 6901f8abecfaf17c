"""`distillc view`: its queries on a PERsD store compiled against the scripted student and teacher
(loopback servers, the real sandbox), its pages in a real browser, and how it shares the store with
a compile."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest
import yaml

from compiler.cost import per_example
from compiler.runner import compile_recipe
from compiler.store import outputs
from compiler.store.db import Store
from compiler.viewer import queries
from compiler.viewer.app import create_app
from tests.compiler.conftest import ROOT, run_cli
from tests.persd.conftest import (FIXED, LIMIT, PERSD_STAGES, STUDENT_FAILS, TEACHER_PROSE, TEACHER_WRONG,
                                  models, student, tasks, teacher)  # noqa: F401 - fixtures
from tests.persd.scripted import STARTER
from tests.viewer_server import serving

FAILED_AND_FIXED = "starter/02-is_even"     # the student's attempt returns a wrong value; the teacher fixes it


def write_recipe(directory: Path, student_url: str, teacher_url: str, name: str = "persd-test", limit: int = LIMIT) -> Path:
    recipe = {"name": name, "sources": [{"kind": "jsonl", "path": str(STARTER), "limit": limit, "name": "starter"}],
              **models(student_url, teacher_url), "stages": PERSD_STAGES}
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def env():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OPENAI_API_KEY", "test-key")
        mp.setenv("DISTILLC_PROGRESS", "0")
        yield


@pytest.fixture(scope="module")
def compiled(tmp_path_factory, env, student, teacher) -> Path:
    tmp = tmp_path_factory.mktemp("viewer")
    store = tmp / "store.duckdb"
    compile_recipe(str(write_recipe(tmp, student.url, teacher.url)), str(store))
    return store


@pytest.fixture
def opened(compiled):
    with Store.open_readonly(str(compiled)) as store:
        yield store, queries.get_version(store, "persd-test", 1)


def final_rows(store: Store, fp: str) -> pl.DataFrame:
    return outputs.load_output(store, fp)


def every_row(store, version, costs=None, **filters) -> list[dict[str, Any]]:
    found = queries.search_rows(store, version, queries.RowQuery(page_size=1000, **filters), costs)
    assert found["total"] == len(found["rows"])
    return found["rows"]


# -- queries ---------------------------------------------------------------------------------------

def test_corpora_lists_versions_with_rows_and_cost(opened):
    store, version = opened
    listed = queries.corpora(store)
    assert [c["name"] for c in listed] == ["persd-test"]
    v = listed[0]["versions"][0]
    ledger = store.con.execute("SELECT sum(usd) FROM llm_calls").fetchall()[0][0]
    assert (v["version"], v["rows"], v["fingerprint"]) == (1, version.rows, version.fingerprint)
    assert v["usd"] == pytest.approx(ledger) and v["usd"] > 0


def test_rows_are_the_kept_records_then_every_rejection(opened):
    store, version = opened
    rows = every_row(store, version)
    kept = [r for r in rows if r["status"] == "kept"]
    dropped = [r for r in rows if r["status"] == "dropped"]
    assert [r["row_id"] for r in kept] == final_rows(store, version.fingerprint)["row_id"].to_list()
    rejections = store.con.execute("SELECT count(*) FROM rejections").fetchall()[0][0]
    assert len(dropped) == rejections == (LIMIT - len(STUDENT_FAILS)) + len(TEACHER_WRONG | TEACHER_PROSE)
    assert rows == kept + dropped
    assert every_row(store, version, status="kept") == kept and every_row(store, version, status="dropped") == dropped


def test_search_covers_the_task_and_the_output_text(opened):
    store, version = opened
    final = final_rows(store, version.fingerprint)
    by_task = every_row(store, version, q="EVEN AND FALSE otherwise")   # instruction text, any case
    assert {r["task_id"] for r in by_task} == {FAILED_AND_FIXED}
    assert len(by_task) == final.filter(pl.col("task_id") == FAILED_AND_FIXED).height
    rectified = every_row(store, version, q="# rectified")                # only refined completions hold it
    expected = final.filter(pl.col("completion").str.contains("# rectified", literal=True))["row_id"].to_list()
    assert [r["row_id"] for r in rectified] == expected and expected
    assert {r["task_id"] for r in rectified} == FIXED
    beyond = queries.search_rows(store, version, queries.RowQuery(q="# rectified", page=99))
    assert beyond["total"] == len(expected) and beyond["rows"] == []
    second = queries.search_rows(store, version, queries.RowQuery(q="# rectified", page=2, page_size=2))
    assert second["total"] == len(expected) and [r["row_id"] for r in second["rows"]] == expected[2:4]
    still_wrong = every_row(store, version, q="still wrong")              # a rejection's detail
    assert [(r["status"], r["task_id"]) for r in still_wrong] == [("dropped", "starter/07-to_fahrenheit")]
    assert every_row(store, version, q="is%even") == []                  # LIKE wildcards are literal
    assert every_row(store, version, q="is_even") and every_row(store, version, q="no such text anywhere") == []


def test_filters_by_variant_stage_and_reason(opened):
    store, version = opened
    final = final_rows(store, version.fingerprint)
    counts = dict(final.group_by("variant").len().iter_rows())
    assert set(queries.facets(store, version)["variants"]) == set(counts)
    for variant, n in counts.items():
        rows = every_row(store, version, variant=variant)
        assert len(rows) == n and {(r["status"], r["variant"]) for r in rows} == {("kept", variant)}
    failed = every_row(store, version, reason="refinement_failed")
    assert {r["task_id"] for r in failed} == TEACHER_WRONG | TEACHER_PROSE
    assert {(r["status"], r["stage"]) for r in failed} == {("dropped", "keep_refinements")}
    keep_fp = next(s["fingerprint"] for s in version.stages if s["name"] == "keep_refinements")
    assert {r["stage_fp"] for r in failed} == {keep_fp}
    passed = every_row(store, version, stage="teacher_refine")
    assert {r["reason"] for r in passed} == {"attempt_passed"} and len(passed) == LIMIT - len(STUDENT_FAILS)
    assert every_row(store, version, stage="teacher_refine", reason="refinement_failed") == []
    assert every_row(store, version, variant="PERsD", status="dropped") == []


def test_cost_filter_uses_each_examples_cost(opened):
    store, version = opened
    costs = queries.row_costs(store, version)
    examples = {e["row_id"]: e["usd"] for e in per_example(store, version)["examples"]}
    rows = every_row(store, version, costs, status="kept")
    assert {r["row_id"]: r["usd"] for r in rows} == pytest.approx(examples)
    values = sorted(examples.values())
    low, high = values[len(values) // 4], values[3 * len(values) // 4]
    assert low < high
    ranged = every_row(store, version, costs, status="kept", min_usd=low, max_usd=high)
    assert {r["row_id"] for r in ranged} == {r for r, usd in examples.items() if low <= usd <= high}
    assert 0 < len(ranged) < len(examples)
    assert all(r["usd"] >= high for r in every_row(store, version, costs, min_usd=high))


def test_pages_cover_every_row_once_in_order(opened):
    store, version = opened
    everything = [r["row_id"] for r in every_row(store, version)]
    paged, page = [], 1
    while True:
        found = queries.search_rows(store, version, queries.RowQuery(page=page, page_size=7))
        assert found["total"] == len(everything) and found["pages"] == -(-len(everything) // 7)
        if not found["rows"]:
            break
        assert len(found["rows"]) <= 7
        paged += [r["row_id"] for r in found["rows"]]
        page += 1
    assert paged == everything and page == found["pages"] + 1


def persd_record(store: Store, version, task_id: str, variant: str = "PERsD") -> str:
    rows = every_row(store, version, variant=variant)
    return next(r["row_id"] for r in rows if r["task_id"] == task_id)


def test_lineage_of_a_refined_example_in_stage_order(opened):
    store, version = opened
    lin = queries.lineage(store, version, persd_record(store, version, FAILED_AND_FIXED))
    assert lin["kept"] and [s["name"] for s in lin["stages"]] == [s["name"] for s in version.stages]
    written = {s["name"]: {k: v for r in s["rows"] for k, v in r["columns"].items()} for s in lin["stages"]}
    assert written["sources"]["task_id"] == FAILED_AND_FIXED and "tests" in written["sources"]
    assert written["student_attempt"]["attempt_code"].endswith("return 12345\n")
    assert written["execute_attempt"]["attempt_passed"] is False
    assert "12345" in written["execute_attempt"]["attempt_feedback"]
    assert "RECTIFIED CODE" in written["teacher_refine"]["refine_text"]
    assert "# rectified" in written["parse_refinement"]["refine_code"]
    assert written["execute_refinement"]["refine_passed"] is True
    assert written["emit_persd"]["variant"] == "PERsD" and "# rectified" in written["emit_persd"]["completion"]
    assert "instruction" not in written["emit_persd"] and "task_id" not in written["emit_persd"]
    assert not any(s["rejections"] for s in lin["stages"])


def test_calls_of_an_example_are_its_attempt_and_its_refinement(opened):
    store, version = opened
    lin = queries.lineage(store, version, persd_record(store, version, FAILED_AND_FIXED))
    calls = lin["calls"]
    assert [(c["stage"], c["role"]) for c in calls] == [("student_attempt", "student"), ("teacher_refine", "teacher")]
    ids = set(lin["ancestors"]) | {lin["row_id"]}
    assert all(set(c["served_rows"]) <= ids for c in calls)
    assert all(c["usd"] > 0 and c["prompt_tokens"] > 0 and not c["cache_hit"] for c in calls)
    attempt, refine = calls
    assert "Return True when the integer n is even" in attempt["request"] and attempt["response"] == "    return 12345\n"
    assert "INCORRECT CODE" in refine["request"] and "RECTIFIED CODE" in refine["response"]
    passed = queries.lineage(store, version, persd_record(store, version, "starter/01-square", "StanD"))
    assert [c["stage"] for c in passed["calls"]] == []    # StanD links to the task row: no call served it


def test_lineage_of_a_dropped_row_shows_where_and_why(opened):
    store, version = opened
    row = every_row(store, version, reason="refinement_failed", q="fahrenheit")[0]
    lin = queries.lineage(store, version, row["row_id"])
    assert not lin["kept"]
    where = [(s["name"], x["reason"]) for s in lin["stages"] for x in s["rejections"]]
    assert where == [("keep_refinements", "refinement_failed")]
    assert [s["rows"] for s in lin["stages"]][-2:] == [[], []]
    assert [c["stage"] for c in lin["calls"]] == ["student_attempt", "teacher_refine"]


def test_unknown_names_are_not_found(opened):
    store, version = opened
    with pytest.raises(queries.NotFound):
        queries.get_version(store, "persd-test", 9)
    with pytest.raises(queries.NotFound):
        queries.get_version(store, "nope", 1)
    with pytest.raises(queries.NotFound):
        queries.lineage(store, version, "no-such-row")


# -- the app ---------------------------------------------------------------------------------------

def test_pages_and_json_over_http(compiled):
    app = create_app(str(compiled))
    with serving(app) as url:
        index = httpx.get(url + "/")
        assert index.status_code == 200 and "persd-test@1" in index.text
        rows = httpx.get(url + "/corpus/persd-test/1", params={"q": "is_even", "variant": "PERsD"})
        assert rows.status_code == 200 and "1 row match" in rows.text
        costed = httpx.get(url + "/api/corpus/persd-test/1/rows", params={"min_usd": "0", "status": "kept"}).json()
        assert costed["costs_ready"] and costed["total"] > 0 and all(r["usd"] is not None for r in costed["rows"])
        api = httpx.get(url + "/api/corpus/persd-test/1/rows", params={"reason": "refinement_failed"}).json()
        assert api["total"] == 2 and {r["stage"] for r in api["rows"]} == {"keep_refinements"}
        row_id = httpx.get(url + "/api/corpus/persd-test/1/rows", params={"variant": "PERsD"}).json()["rows"][0]["row_id"]
        lin = httpx.get(url + f"/api/corpus/persd-test/1/row/{row_id}").json()
        assert lin["kept"] and len(lin["calls"]) == 2
        assert httpx.get(url + "/api/corpora").json()["corpora"][0]["name"] == "persd-test"


@pytest.mark.parametrize("path", ["/corpus/nope/1", "/corpus/persd-test/7", "/corpus/persd-test/1/row/no-such-row",
                                  "/corpus/persd-test/x", "/elsewhere"])
def test_unknown_pages_are_404_pages(compiled, path):
    from starlette.testclient import TestClient

    client = TestClient(create_app(str(compiled)))
    page = client.get(path)
    assert page.status_code == 404 and "not found" in page.text and "Traceback" not in page.text
    api = client.get("/api" + path if path.startswith("/corpus") else "/api/nothing")
    assert api.status_code == 404 and api.json()["error"] == "not found"


def test_bad_filters_are_400_pages(compiled):
    from starlette.testclient import TestClient

    client = TestClient(create_app(str(compiled)))
    for query in ({"min_usd": "lots"}, {"page": "0"}, {"status": "maybe"}):
        page = client.get("/corpus/persd-test/1", params=query)
        assert page.status_code == 400 and list(query)[0] in page.text


def test_user_text_is_escaped(tmp_path, env):
    from starlette.testclient import TestClient

    tasks_file = tmp_path / "tasks.jsonl"
    tasks_file.write_text(json.dumps({"task_id": "x/<b>1</b>", "instruction": "Say <script>alert('x')</script> twice.",
                                      "entry_point": "f", "reference_solution": "def f():\n    return 1\n",
                                      "tests": ["assert f() == 1"]}) + "\n")
    recipe = tmp_path / "esc.yaml"
    recipe.write_text(f"name: esc\nsources:\n  - kind: jsonl\n    path: {tasks_file}\n")
    compile_recipe(str(recipe), str(tmp_path / "s.duckdb"))
    client = TestClient(create_app(str(tmp_path / "s.duckdb")))
    rows = client.get("/corpus/esc/1", params={"q": "<script>"})
    assert rows.status_code == 200 and "<script>" not in rows.text and "&lt;script&gt;" in rows.text
    row_id = client.get("/api/corpus/esc/1/rows").json()["rows"][0]["row_id"]
    page = client.get(f"/corpus/esc/1/row/{row_id}")
    assert "<script>" not in page.text and "<b>1</b>" not in page.text and "&lt;b&gt;1&lt;/b&gt;" in page.text


# -- sharing the store with a compile --------------------------------------------------------------

HOLD = ("import sys; sys.path.insert(0, %r)\n"
        "from compiler.store.db import Store\n"
        "s = Store.open(sys.argv[1]); print('holding', flush=True); sys.stdin.read(); s.close()\n") % str(ROOT)


def test_a_busy_store_gets_a_retrying_page_not_an_error(compiled, tmp_path):
    store = tmp_path / "busy.duckdb"
    shutil.copy(compiled, store)
    app = create_app(str(store), retry_seconds=0.3, refresh_seconds=2)
    writer = subprocess.Popen([sys.executable, "-c", HOLD, str(store)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert writer.stdout.readline().strip() == "holding"
        with serving(app) as url:
            page = httpx.get(url + "/corpus/persd-test/1")
            assert page.status_code == 503 and page.headers["retry-after"] == "2"
            assert "a compile is writing this store; retrying" in page.text
            assert '<meta http-equiv="refresh" content="2">' in page.text
            api = httpx.get(url + "/api/corpora")
            assert api.status_code == 503 and api.json()["detail"].startswith("a compile is writing")
            writer.stdin.close()
            writer.wait(30)
            assert httpx.get(url + "/corpus/persd-test/1").status_code == 200
    finally:
        writer.kill()
        writer.wait()


def test_the_store_is_not_held_between_requests(compiled, tmp_path):
    from starlette.testclient import TestClient

    store = tmp_path / "free.duckdb"
    shutil.copy(compiled, store)
    app = create_app(str(store))
    client = TestClient(app)
    for path in ("/", "/corpus/persd-test/1?q=even", "/api/corpus/persd-test/1/rows?variant=PERsD"):
        assert client.get(path).status_code == 200
        for job in list(app.state.viewer.cost_jobs.values()):
            job.join()                          # the one-off cost computation reads the store too
        Store.open(str(store)).close()          # a writer gets the file right after each request


def test_a_compile_succeeds_while_the_viewer_serves(compiled, tmp_path, student, teacher):
    store = tmp_path / "shared.duckdb"
    shutil.copy(compiled, store)
    recipe = write_recipe(tmp_path, student.url, teacher.url, name="persd-again", limit=4)
    with serving(create_app(str(store))) as url:
        first = httpx.get(url + "/corpus/persd-test/1", params={"min_usd": "0"})   # computes and keeps the costs
        assert first.status_code == 200
        done = subprocess.run([sys.executable, "-m", "compiler.cli", "compile", str(recipe), "--store", str(store),
                               "--json"], capture_output=True, text=True, cwd=ROOT, timeout=600)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["version"] == 1
        index = httpx.get(url + "/")
        assert index.status_code == 200 and "persd-again@1" in index.text and "persd-test@1" in index.text


def test_a_compile_waits_for_a_reader_that_holds_the_store_for_a_moment(compiled, tmp_path, student, teacher):
    """A viewer's read (or a version's one-off cost computation) holds the file for a moment: a
    compile that starts then waits for it rather than failing with "in use"."""
    store = tmp_path / "read.duckdb"
    shutil.copy(compiled, store)
    reader = subprocess.Popen([sys.executable, "-c", ("import sys, time; sys.path.insert(0, %r)\n"
                               "from compiler.store.db import Store\n"
                               "s = Store.open_readonly(sys.argv[1]); print('reading', flush=True)\n"
                               "time.sleep(2.0); s.close()\n") % str(ROOT), str(store)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout.readline().strip() == "reading"
        recipe = write_recipe(tmp_path, student.url, teacher.url, name="persd-waits", limit=2)
        done = subprocess.run([sys.executable, "-m", "compiler.cli", "compile", str(recipe), "--store", str(store),
                               "--json"], capture_output=True, text=True, cwd=ROOT, timeout=600)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["version"] == 1
    finally:
        reader.kill()
        reader.wait()


# -- bad input -------------------------------------------------------------------------------------

def test_port_in_use_is_one_line(compiled):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        r = run_cli("view", "--store", compiled, "--port", port)
    assert r.code == 1 and r.err == f"distillc: error: port {port} on 127.0.0.1 is in use: pass --port\n"


def test_missing_store_is_one_line(tmp_path):
    r = run_cli("view", "--store", tmp_path / "nothing.duckdb", "--port", "0", "--check")
    assert r.code == 1 and r.err.count("\n") == 1 and "no store here" in r.err


def test_check_renders_the_index_and_exits(compiled):
    r = run_cli("view", "--store", compiled, "--port", "0", "--check")
    assert r.code == 0 and "the index renders" in r.out


# -- in a browser ----------------------------------------------------------------------------------

def test_pages_in_a_browser(compiled, browser):
    with serving(create_app(str(compiled))) as url:
        browser.open(url + "/")
        assert "persd-test@1" in browser.text()
        browser.shoot("viewer_index")
        browser.open(url + "/corpus/persd-test/1?q=is_even&status=all")
        text = browser.text()
        assert f"{len(every_row_over_http(url, q='is_even'))} rows match" in text and FAILED_AND_FIXED in text
        browser.shoot("viewer_rows")
        row_id = next(r["row_id"] for r in every_row_over_http(url, variant="PERsD") if r["task_id"] == FAILED_AND_FIXED)
        browser.open(url + f"/corpus/persd-test/1/row/{row_id}")
        text = browser.text()
        browser.shoot("viewer_example")
        assert "return 12345" in text                                  # the student's attempt
        assert re.search(r"attempt_feedback\s+AssertionError", text)   # the sandbox's feedback
        assert "INPUT: (4)" in text and "OUTPUT: 12345" in text
        assert "RECTIFIED CODE" in text and "# rectified" in text      # the teacher's refinement
        assert re.search(r"attempt_passed\s+False", text) and re.search(r"refine_passed\s+True", text)   # verdicts
        assert browser.errors() == []


def every_row_over_http(url: str, **params) -> list[dict[str, Any]]:
    return httpx.get(url + "/api/corpus/persd-test/1/rows", params=params).json()["rows"]
