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


def test_doctor_says_why_a_level_or_mechanism_is_not_used(monkeypatch, tmp_path, capsys):
    """bubblewrap that cannot start and no cgroup to nest in: doctor still works (landlock level)
    and names each reason, from what bubblewrap said and what the cgroup tree refused."""
    from compiler.cli import main
    from evals.sandbox import cgroups, launch, pool

    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\n[ \"$1\" = --version ] && echo 'bubblewrap 0.0' && exit 0\n"
                    "echo 'bwrap: setting up uid map: Permission denied' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr(launch, "bwrap_binary", lambda: str(fake))
    launch.bwrap_version.cache_clear()
    monkeypatch.setattr(cgroups, "ROOT", tmp_path / "no-cgroups")
    pool.shutdown()
    try:
        assert main(["doctor"]) == 0
        human = capsys.readouterr().out
        assert main(["doctor", "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
    finally:
        pool.shutdown()
        launch.bwrap_version.cache_clear()
    assert report["level"] == "landlock" and report["bwrap_works"] is False
    assert report["not_used"]["bwrap"] == "bwrap: setting up uid map: Permission denied"
    assert f"{tmp_path / 'no-cgroups'}/" in report["not_used"]["cgroups"]           # v1: create, v2: read
    assert "bwrap: not used: bwrap: setting up uid map: Permission denied\n" in human
    assert f"cgroups: not used: {report['not_used']['cgroups']}\n" in human
    for name in ("landlock", "seccomp"):
        assert (f"{name}: not used" in human) == (name in report["not_used"])
