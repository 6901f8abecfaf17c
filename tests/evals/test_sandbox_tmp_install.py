"""The project installed under /tmp (a clone in a temporary directory, as CI and many users have
it) still runs programs inside bubblewrap, whose private /tmp must not hide the interpreter.

The installation is small but real: a venv made under /tmp (its ``bin/python``, its
site-packages, a module only there), this repository's ``compiler`` and ``evals`` packages copied
beside it and put on its path, and the other dependencies taken from the running venv through a
``.pth`` line (they live outside /tmp, as a system site-packages would).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
from pathlib import Path

import pytest

from evals.sandbox import isolation_report

REPO = Path(__file__).resolve().parents[2]
TOKEN = secrets.token_hex(8)


@pytest.fixture(scope="module")
def tmp_install():
    report = isolation_report()
    if report["level"] != "bwrap":
        pytest.skip(f"bubblewrap does not work on this machine: {report['not_used'].get('bwrap', report.get('error'))}")
    root = Path(tempfile.mkdtemp(prefix="distillc-tmp-install-", dir="/tmp"))
    try:
        yield _install(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _install(root: Path) -> dict:
    """Make the venv and the project copy under ``root``; returns its python and paths."""
    venv, project = root / "venv", root / "project"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    for package in ("compiler", "evals"):
        shutil.copytree(REPO / package, project / package, ignore=shutil.ignore_patterns("__pycache__"))
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "distillc_project.pth").write_text(f"{project}\n{sysconfig.get_paths()['purelib']}\n")
    (site / "tmp_marker.py").write_text(f"VALUE = {TOKEN!r}\n")
    return {"python": str(python), "site": str(site), "project": str(project), "root": str(root)}


def run_in(install: dict, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    return subprocess.run([install["python"], *args], capture_output=True, text=True, timeout=180,
                          cwd=install["project"], env=env)


PROBE = textwrap.dedent("""
    import json, sys
    import evals.sandbox as sandbox
    from evals.sandbox import Job, TestSpec, run_many

    site = sys.argv[1]
    jobs = [Job(code="import os, tmp_marker\\nprint(tmp_marker.VALUE, os.getcwd())\\n", tests=TestSpec(style="run")),
            Job(code=f"open({site + '/planted.py'!r}, 'w').write('x = 1')\\n", tests=TestSpec(style="run"))]
    results = run_many(jobs, isolation="bwrap")
    print(json.dumps({"package": sandbox.__file__, "executable": sys.executable, "prefix": sys.prefix,
                      "results": [[r.status.value, r.stdout, r.feedback, r.isolation] for r in results]}))
""")


def test_a_venv_and_project_under_tmp_run_inside_bubblewrap(tmp_install):
    r = run_in(tmp_install, "-c", PROBE, tmp_install["site"])
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    root = tmp_install["root"] + "/"
    assert out["package"].startswith(root) and out["executable"].startswith(root) and out["prefix"].startswith(root)
    marker, planted = out["results"]
    assert marker[0] == "passed" and marker[3].startswith("bwrap+"), marker
    value, cwd = marker[1].split()
    assert value == TOKEN and cwd.startswith("/tmp/jobs/job-")          # the private scratch
    assert planted[0] == "error" and "Read-only file system" in planted[2], planted
    assert not Path(tmp_install["site"], "planted.py").exists()


def test_doctor_on_an_install_under_tmp_reports_bubblewrap_in_use(tmp_install):
    r = run_in(tmp_install, "-m", "compiler.cli", "doctor", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["level"] == "bwrap" and report["bwrap_works"] is True, report
    assert report["isolation"].startswith("bwrap+") and "bwrap" not in report["not_used"]
    human = run_in(tmp_install, "-m", "compiler.cli", "doctor")
    assert human.returncode == 0 and "(level bwrap)" in human.stdout and "bwrap: not used" not in human.stdout


def test_the_job_directories_never_hold_a_bound_path(monkeypatch):
    from evals.sandbox import launch

    monkeypatch.setattr(launch, "_python_dirs", lambda: ["/root/.pyenv/versions/3.11", "/tmp/x/venv"])
    assert launch.bwrap_workroot() == "/tmp/jobs"
    monkeypatch.setattr(launch, "_python_dirs", lambda: ["/tmp/jobs/venv", "/tmp/jobs-1", "/tmp/jobs-22/lib"])
    assert launch.bwrap_workroot() == "/tmp/jobs-2"
    args = launch._bwrap_args()
    tmpfs = args.index("--tmpfs")
    assert args[tmpfs + 1] == "/tmp"
    under_tmp = [i for i, a in enumerate(args) if a == "--ro-bind" and args[i + 1].startswith("/tmp/")]
    assert len(under_tmp) == 3 and min(under_tmp) > tmpfs               # bound on top of the private /tmp
