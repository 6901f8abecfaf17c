"""distillc doctor: what this machine gives the sandbox (isolation level, bubblewrap, the uid
drop, Landlock, seccomp, per-worker cgroup caps) and which toolchains the "compiles and runs"
check can use."""

from __future__ import annotations

import argparse
import platform
import sys

from compiler.commands.common import add_json, print_json

NAME = "doctor"
HELP = "report the sandbox isolation this machine gives and the toolchains it has"
EXAMPLE = "distillc doctor --json"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_json(p)


def _yes(flag: object) -> str:
    return "yes" if flag else "no"


def _print_human(report: dict) -> None:
    print(f"python: {report['python']} ({report['platform']})")
    if report.get("level"):
        print(f"sandbox isolation: {report['isolation']} (level {report['level']})")
    else:
        print(f"sandbox isolation: unavailable ({report.get('error')})")
    bwrap = report["bwrap"]
    print(f"bubblewrap: {bwrap['path'] or 'not found'}" + (f" ({bwrap['version']})" if bwrap.get("version") else "")
          + f", works here: {_yes(report.get('bwrap_works'))}")
    print(f"running as root: {_yes(report['root'])}, unprivileged uid drop: {_yes(report.get('uid_drop'))}")
    landlock = report.get("landlock") or {}
    print(f"landlock: {_yes(landlock.get('works'))}" + (f" (ABI {landlock['abi']})" if landlock.get("abi") else ""))
    print(f"seccomp: {_yes(report.get('seccomp'))}")
    caps = report.get("cgroups") or {}
    print(f"cgroup caps per worker: {_yes(caps.get('worker_caps'))}"
          + (f" (memory {caps['memory_cap_mb']} MiB, {caps['pids_max']} processes)" if caps.get("worker_caps") else ""))
    found = [name for name, ok in report["toolchains"].items() if ok]
    missing = [name for name, ok in report["toolchains"].items() if not ok]
    print(f"toolchains: {', '.join(found)}" + (f" (missing: {', '.join(missing)})" if missing else ""))


def run(args: argparse.Namespace) -> int:
    from evals.sandbox import isolation_report

    report = {"python": sys.version.split()[0], "platform": platform.platform(), **isolation_report()}
    if args.json:
        print_json(report)
    else:
        _print_human(report)
    return 0 if report.get("level") else 1
