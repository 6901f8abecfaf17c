"""``distillc report``'s accuracy loss (the AKD paper's metric): (pass@1 teacher − pass@1 student) /
pass@1 teacher, against a comparable run of the teacher on the same benchmark."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.evals.test_report import cli, samples, trained


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """HumanEval runs (four problems): the teacher 4/4, the untrained student 1/4, a distilled student
    3/4 whose record names the teacher, an SFT student 2/4 that names none."""
    tmp = tmp_path_factory.mktemp("accuracy-loss")
    path = tmp / "st.duckdb"
    kd = trained(tmp, "kd-student", method="kd", student="base-1b", teacher="teacher-7b",
                 teacher_source="/models/teacher-7b", kd={"loss": "akl"})
    sft = trained(tmp, "sft-student", student="base-1b")
    for i, (model, correct) in enumerate([("teacher-7b", 4), ("base-1b", 1), (kd, 3), (sft, 2)]):
        code, _, err = cli("eval", model, "--samples", samples(tmp, f"s{i}", correct), "--store", path)
        assert code == 0, err
    return path


def report(store: Path, *argv: str) -> dict[str, dict]:
    code, out, err = cli("report", "--store", store, "--json", *argv)
    assert code == 0, err
    return {Path(r["model"]).name: r for r in json.loads(out)["runs"]}


def test_a_distilled_model_is_set_against_the_teacher_its_record_names(store):
    rows = report(store)
    assert rows["kd-student"]["accuracy_loss"] == pytest.approx((1.0 - 0.75) / 1.0)
    assert rows["sft-student"]["accuracy_loss"] is None       # no teacher in its record
    assert rows["base-1b"]["accuracy_loss"] is None and rows["teacher-7b"]["accuracy_loss"] is None


def test_a_named_teacher_gives_every_other_model_the_figure(store):
    rows = report(store, "--teacher", "teacher-7b")
    assert rows["base-1b"]["accuracy_loss"] == pytest.approx(0.75)
    assert rows["sft-student"]["accuracy_loss"] == pytest.approx(0.5)
    assert rows["kd-student"]["accuracy_loss"] == pytest.approx(0.25)
    assert rows["teacher-7b"]["accuracy_loss"] is None
    assert all(r["accuracy_loss"] is None for r in report(store, "--teacher", "nobody").values())


def test_the_table_shows_it_as_a_percentage(store):
    code, out, _ = cli("report", "--store", store, "--teacher", "teacher-7b")
    assert code == 0 and "acc.loss" in out.splitlines()[0]
    line = next(l for l in out.splitlines() if "base-1b" in l and "kd-student" not in l and "sft" not in l)
    assert "75.0%" in line and "(pass@1 of the teacher - pass@1 of the model)" in out


def test_the_teacher_run_must_be_comparable(tmp_path):
    """No teacher run: no figure; a teacher run on other problems (two only) does not count."""
    lone = tmp_path / "lone.duckdb"
    kd = trained(tmp_path, "kd2", method="kd", student="base-1b", teacher="teacher-7b")
    assert cli("eval", kd, "--samples", samples(tmp_path, "k", 3), "--store", lone)[0] == 0
    assert report(lone)["kd2"]["accuracy_loss"] is None
    two = tmp_path / "two.jsonl"
    two.write_text("".join(json.dumps(json.loads(line)) + "\n"
                           for line in samples(tmp_path, "t", 4).read_text().splitlines()[:2]))
    assert cli("eval", "teacher-7b", "--samples", two, "--store", lone)[0] == 0
    assert report(lone)["kd2"]["accuracy_loss"] is None
