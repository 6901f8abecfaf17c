"""``distillc report``: eval runs compared across corpus versions and students, with each trained
model set against its base student's comparable run."""

from __future__ import annotations

import gzip
import io
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from compiler.cli import main
from compiler.store.db import Store
from compiler.store.evalruns import TRAIN_RECORD
from compiler.store.versions import create_version
from evals.problems import humaneval_path


def cli(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def samples(tmp: Path, name: str, correct: int) -> Path:
    """Four HumanEval tasks, the first ``correct`` of them solved."""
    with gzip.open(humaneval_path(), "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh][:4]
    path = tmp / f"{name}.jsonl"
    path.write_text("".join(json.dumps({"task_id": r["task_id"],
                                        "completion": r["canonical_solution"] if i < correct else "    return None\n"}) + "\n"
                            for i, r in enumerate(rows)))
    return path


def trained(tmp: Path, name: str, **record) -> Path:
    model = tmp / name
    model.mkdir()
    (model / TRAIN_RECORD).write_text(json.dumps(record))
    return model


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A store with: the base student (1/4), two corpus versions' students (2/4, 4/4), an
    untrained other model (3/4), and a base run on MBPP that must not count as a base."""
    tmp = tmp_path_factory.mktemp("report")
    store = tmp / "st.duckdb"
    with Store.open(store) as opened:
        for fp in ("fp-1", "fp-2"):
            create_version(opened, corpus="tiny", fingerprint=fp, stages=[], recipe={}, recipe_yaml="",
                           recipe_path=None, rows=0)
    plan = [("base-model", 1), (trained(tmp, "v1", corpus="tiny", version=1, fingerprint="fp-1", student="base-model"), 2),
            (trained(tmp, "v2", corpus="tiny", version=2, fingerprint="fp-2", variant="persd", student="base-model"), 4),
            ("other-model", 3)]
    for i, (model, correct) in enumerate(plan):
        code, _, err = cli("eval", model, "--samples", samples(tmp, f"s{i}", correct), "--store", store)
        assert code == 0, err
    return store


def test_report_json_compares_students_with_their_base(runs):
    code, out, err = cli("report", "--store", runs, "--json")
    assert code == 0, err
    rows = {Path(r["model"]).name: r for r in json.loads(out)["runs"]}
    assert rows["base-model"]["pass_at_k"]["pass@1"] == 0.25 and rows["base-model"]["delta_pass@1"] is None
    assert rows["v1"]["delta_pass@1"] == pytest.approx(0.25) and rows["v1"]["version"] == 1
    assert rows["v2"]["delta_pass@1"] == pytest.approx(0.75) and rows["v2"]["variant"] == "persd"
    assert rows["other-model"]["delta_pass@1"] is None and rows["other-model"]["corpus"] is None
    assert all(r["linked"] for r in rows.values() if r["corpus"])


def test_report_table_orders_by_corpus_version(runs):
    code, out, _ = cli("report", "--store", runs)
    lines = out.splitlines()
    assert code == 0 and lines[0].split()[:4] == ["benchmark", "corpus", "student", "model"]
    body = lines[2:]
    assert [l.split()[1] for l in body] == ["-", "-", "tiny@1", "tiny@2:persd"]
    v2 = next(l for l in body if "tiny@2" in l)
    assert "+0.7500" in v2 and "1.0000" in v2


def test_base_runs_must_be_comparable(runs, tmp_path):
    # a base run on other problems (two tasks only) is not a baseline for four-task runs
    with gzip.open(humaneval_path(), "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh][:2]
    path = tmp_path / "two.jsonl"
    path.write_text("".join(json.dumps({"task_id": r["task_id"], "completion": r["canonical_solution"]}) + "\n"
                            for r in rows))
    store = tmp_path / "copy.duckdb"
    store.write_bytes(Path(runs).read_bytes())
    assert cli("eval", "base-model", "--samples", path, "--store", store)[0] == 0
    out = json.loads(cli("report", "--store", store, "--json")[1])
    v1 = next(r for r in out["runs"] if Path(r["model"]).name == "v1")
    assert v1["delta_pass@1"] == pytest.approx(0.25)


def test_benchmark_filter_and_empty_store(runs, tmp_path):
    code, out, _ = cli("report", "--store", runs, "--benchmark", "mbpp", "--json")
    assert code == 0 and json.loads(out) == {"benchmark": "mbpp", "runs": []}
    Store.open(tmp_path / "empty.duckdb").close()
    code, out, _ = cli("report", "--store", tmp_path / "empty.duckdb")
    assert code == 0 and "no eval runs yet" in out
    code, _, err = cli("report", "--store", tmp_path / "none.duckdb")
    assert code == 1 and "no store here" in err


def test_unlinked_corpus_is_flagged(tmp_path):
    store = tmp_path / "st.duckdb"
    model = trained(tmp_path, "far", corpus="gone", version=5, fingerprint="zz", student="b")
    assert cli("eval", model, "--samples", samples(tmp_path, "s", 2), "--store", store)[0] == 0
    code, out, _ = cli("report", "--store", store)
    assert code == 0 and "gone@5 (?)" in out and "not in this store" in out
