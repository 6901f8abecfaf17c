"""``distillc exec`` and ``distillc doctor`` as a user runs them (real subprocesses)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from evals.sandbox import toolchains

RESULT_KEYS = {"status", "passed", "stdout", "stderr", "cpu_s", "wall_s", "isolation", "feedback", "n_passed", "n_total"}


def distillc(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "compiler.cli", *map(str, args)], capture_output=True, text=True, timeout=120)


@pytest.fixture
def program(tmp_path):
    path = tmp_path / "solution.py"
    path.write_text("def add(a, b):\n    return a + b\n\ndef unused():\n    pass\n")
    return path


def test_exec_humaneval_check_file(program, tmp_path):
    test = tmp_path / "check.py"
    test.write_text("def check(candidate):\n    assert candidate(1, 2) == 3\n")
    r = distillc("exec", program, "--test", test, "--entry-point", "add", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert RESULT_KEYS <= out.keys() and out["status"] == "passed" and out["passed"] is True
    assert out["isolation"].endswith("rlimits")
    missing = distillc("exec", program, "--test", test)
    assert missing.returncode == 1 and "--entry-point" in missing.stderr and len(missing.stderr.strip().splitlines()) == 1


def test_exec_assert_file_reports_failure_but_exits_zero(program, tmp_path):
    test = tmp_path / "asserts.py"
    test.write_text("import math\nassert add(1, 2) == 3\nassert add(2, 2) == 5\n")
    r = distillc("exec", program, "--test", test, "--json")
    assert r.returncode == 0
    out = json.loads(r.stdout)
    assert out["status"] == "failed" and (out["n_passed"], out["n_total"]) == (1, 2)
    assert out["feedback"] == "AssertionError\nINPUT: (2, 2)\nOUTPUT: 4\nEXPECTED: 5"
    human = distillc("exec", program, "--test", test)
    assert human.returncode == 0 and "status: failed (1/2 tests passed)" in human.stdout and "EXPECTED: 5" in human.stdout


def test_exec_json_test_spec_and_limits(program, tmp_path):
    spec = {"style": "io", "cases": [{"kind": "io", "call": "add(2, 3)", "expected": "5"}]}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    r = distillc("exec", program, "--test", tmp_path / "spec.json", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["status"] == "passed"
    looping = tmp_path / "loop.py"
    looping.write_text("while True:\n    pass\n")
    r = distillc("exec", looping, "--cpu-seconds", "1", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["status"] == "timeout"


def test_exec_bad_usage_is_one_line_and_exit_one(program, tmp_path):
    cases = [
        ("exec", tmp_path / "absent.py"),
        ("exec", program, "--test", tmp_path / "absent_test.py"),
        ("exec", tmp_path / "prog.xyz"),
        ("exec", program, "--cpu-seconds", "0"),
        ("exec", program, "--memory-mb", "lots"),
    ]
    (tmp_path / "prog.xyz").write_text("x")
    for args in cases:
        r = distillc(*args)
        assert r.returncode == 1, args
        assert r.stderr.startswith("distillc") and len(r.stderr.strip().splitlines()) == 1, r.stderr


@pytest.mark.skipif(not toolchains.available("c"), reason="no C compiler")
def test_exec_other_language_by_extension(tmp_path):
    source = tmp_path / "hello.c"
    source.write_text('#include <stdio.h>\nint main(void) { puts("hello"); return 0; }\n')
    out = json.loads(distillc("exec", source, "--json").stdout)
    assert out["status"] == "passed" and out["stdout"] == "hello\n"


def test_exec_help_shows_an_example():
    r = distillc("exec", "--help")
    assert r.returncode == 0 and "distillc exec add.py --test" in r.stdout


def test_doctor_reports_the_isolation_level():
    r = distillc("doctor", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert {"level", "isolation", "bwrap", "uid_drop", "landlock", "seccomp", "cgroups", "python"} <= report.keys()
    human = distillc("doctor")
    assert human.returncode == 0 and f"sandbox isolation: {report['isolation']}" in human.stdout
