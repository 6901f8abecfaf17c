"""distillc doctor: what this machine gives the sandbox (isolation level, bubblewrap, the uid
drop, Landlock, seccomp, per-worker cgroup caps) and which toolchains the "compiles and runs"
check can use.

When a stronger level or a mechanism is not in use, it says why, one line each, as the sandbox
found out when it tried (e.g. ``bwrap: not used: bwrap: execvp ...: No such file or directory``,
or ``cgroups: not used: cgroup v2: the memory controller is not delegated to ...``); ``--json``
has the same under ``not_used`` (keys ``bwrap``, ``landlock``, ``seccomp``, ``uid_drop``,
``cgroups``). Exit status 1 when no level starts at all.
"""

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
    why = report.get("not_used") or {}

    def line(text: str, name: str) -> None:
        print(text)
        if name in why:
            print(f"{name}: not used: {why[name]}")

    print(f"python: {report['python']} ({report['platform']})")
    if report.get("level"):
        print(f"sandbox isolation: {report['isolation']} (level {report['level']})")
    else:
        print(f"sandbox isolation: unavailable ({report.get('error')})")
    bwrap = report["bwrap"]
    line(f"bubblewrap: {bwrap['path'] or 'not found'}" + (f" ({bwrap['version']})" if bwrap.get("version") else "")
         + f", works here: {_yes(report.get('bwrap_works'))}", "bwrap")
    line(f"running as root: {_yes(report['root'])}, unprivileged uid drop: {_yes(report.get('uid_drop'))}", "uid_drop")
    landlock = report.get("landlock") or {}
    line(f"landlock: {_yes(landlock.get('works'))}" + (f" (ABI {landlock['abi']})" if landlock.get("abi") else ""),
         "landlock")
    line(f"seccomp: {_yes(report.get('seccomp'))}", "seccomp")
    caps = report.get("cgroups") or {}
    line(f"cgroup caps per worker: {_yes(caps.get('worker_caps'))}"
         + (f" (memory {caps['memory_cap_mb']} MiB, {caps['pids_max']} processes)" if caps.get("worker_caps") else ""),
         "cgroups")
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
