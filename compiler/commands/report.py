"""distillc report: compare evaluation runs across corpus versions and students.

One line per ``eval_runs`` row, grouped by benchmark and corpus version. A trained model is set
against its base student: ``Δpass@1`` is its pass@1 minus that of the latest run of the base model
on the same problems (same benchmark file and task set) with the same n, temperature and number of
refinement steps; blank when no such base run exists.

The accuracy loss (the AKD paper's metric, METHODS §4(e)) sets a model against its teacher:
``(pass@1 teacher − pass@1 model) / pass@1 teacher`` on the same benchmark, with a comparable run of
the teacher. The teacher is ``--teacher`` when given (then every other model gets the figure: the
untrained student's included), else the one a distilled model's training record names.

With ``CORPUS[@V]`` the table keeps the runs of models trained on that corpus (on that version when
``@V`` is given). With ``--html OUT.html`` it writes instead one self-contained page auditing the corpus
version (:mod:`compiler.report_html`): funnel, cost per stage, model and kept example, variants, the
method's panel, these eval runs and the changes since the previous version. The page is written to a
temporary file beside ``OUT.html`` and renamed, so a failed report leaves no file.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

from compiler.commands.common import add_json, add_store, print_json, print_table, store_path
from compiler.errors import DistillcError, UsageError

NAME = "report"
HELP = "compare eval runs across corpus versions and students; --html: a self-contained report of a corpus version"
EXAMPLE = "distillc report quickstart --html quickstart-report.html   # or: distillc report --benchmark humaneval"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("ref", metavar="CORPUS[@V]", nargs="?", default=None,
                   help="only eval runs of models trained on this corpus (version); the corpus version of --html")
    p.add_argument("--html", metavar="OUT.html", default=None,
                   help="write the HTML report of CORPUS[@V] (the latest version without @V) to this file")
    p.add_argument("--benchmark", choices=("humaneval", "mbpp", "mbpp+"), help="only runs on this benchmark")
    p.add_argument("--teacher", metavar="MODEL", default=None,
                   help="the teacher for the accuracy-loss column, as given to `distillc eval` (default: the "
                   "teacher named in each distilled model's training record)")
    add_store(p)
    add_json(p)


def comparable(run) -> tuple:
    """What must match for two runs' figures to be compared."""
    return (run.benchmark, run.data.get("sha256"), run.n, run.temperature, run.multistep)


def base_runs(runs: list) -> dict[tuple, Any]:
    """The latest run of each (model, comparable settings); runs come in creation order."""
    latest: dict[tuple, Any] = {}
    for run in runs:
        latest[(run.model, *comparable(run))] = run
    return latest


def delta(run, bases: dict[tuple, Any], k: str = "pass@1") -> float | None:
    """``k`` of ``run`` minus that of its base student's comparable run."""
    if not run.student or k not in run.pass_at_k:
        return None
    base = bases.get((run.student, *comparable(run)))
    if base is None or base.run_id == run.run_id or k not in base.pass_at_k:
        return None
    return run.pass_at_k[k] - base.pass_at_k[k]


def teacher_candidates(run, teacher: str | None) -> list[str]:
    """Names the teacher of ``run`` may have been evaluated under: ``--teacher``, else the training
    record's teacher and the path it was loaded from."""
    if teacher:
        return [teacher]
    record = run.training or {}
    return [t for t in (record.get("teacher"), record.get("teacher_source")) if t]


def accuracy_loss(run, runs: list, teacher: str | None = None) -> float | None:
    """(pass@1 of the teacher − pass@1 of ``run``) / pass@1 of the teacher, against the latest
    comparable teacher run; None without one (or when the teacher's pass@1 is 0)."""
    names = teacher_candidates(run, teacher)
    if not names or "pass@1" not in run.pass_at_k:
        return None
    found = [r for r in runs if (r.model in names or r.model_path in names) and r.run_id != run.run_id
             and comparable(r) == comparable(run) and "pass@1" in r.pass_at_k]
    if not found or run.model in names or not found[-1].pass_at_k["pass@1"]:
        return None
    top = found[-1].pass_at_k["pass@1"]
    return (top - run.pass_at_k["pass@1"]) / top


def sort_key(run) -> tuple:
    return (run.benchmark, run.corpus or "", run.version or 0, run.variant or "", run.student or run.model,
            str(run.created_at))


def all_ks(runs: list) -> list[str]:
    names = {k for run in runs for k in run.pass_at_k}
    return sorted(names, key=lambda name: int(name.split("@")[1]))


def _corpus_cell(run) -> str:
    if not run.corpus:
        return "-"
    ref = run.corpus_ref + (f":{run.variant}" if run.variant else "")
    return ref if run.linked else ref + " (?)"


def _short(model: str) -> str:
    """The last two parts of a path (a Hub id stays whole)."""
    parts = Path(model).parts
    return "/".join(parts[-2:]) if len(parts) > 2 else model


def _fmt(value: float | None, signed: bool = False) -> str:
    if value is None:
        return ""
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def _percent(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f}%"


def table_rows(runs: list, ks: list[str], bases: dict[tuple, Any], losses: dict[str, float | None]) -> list[list[Any]]:
    rows = []
    for run in runs:
        steps = "" if run.multistep == 0 else " -> ".join(_fmt(s.get("pass@1")) for s in run.per_step)
        rows.append([run.benchmark, _corpus_cell(run), run.student or "-", _short(run.model), run.prompt_format,
                     run.n, f"{run.temperature:g}", run.problems,
                     *[_fmt(run.pass_at_k.get(k)) for k in ks], _fmt(delta(run, bases), signed=True),
                     _percent(losses[run.run_id]), steps, run.run_id, str(run.created_at)[:16]])
    return rows


def of_corpus(runs: list, ref: str | None) -> list:
    """The runs of models trained on ``CORPUS[@V]`` (all runs without a ref)."""
    if ref is None:
        return runs
    from compiler.store.versions import parse_ref

    corpus, version = parse_ref(ref)
    return [r for r in runs if r.corpus == corpus and (version is None or r.version == version)]


def run(args: argparse.Namespace) -> int:
    from compiler.store.db import Store
    from compiler.store.evalruns import list_runs

    if args.html is not None:
        return write_html(args)
    with Store.open_readonly(store_path(args)) as store:
        runs = list_runs(store, benchmark=args.benchmark)
    bases = base_runs(runs)
    losses = {r.run_id: accuracy_loss(r, runs, args.teacher) for r in runs}
    runs = sorted(of_corpus(runs, args.ref), key=sort_key)
    ks = all_ks(runs)
    if args.json:
        print_json({"benchmark": args.benchmark, "runs": [
            {**r.to_dict(), "delta_pass@1": delta(r, bases), "accuracy_loss": losses[r.run_id]} for r in runs]})
        return 0
    if not runs:
        what = f" of models trained on {args.ref}" if args.ref else ""
        print(f"no eval runs{what} yet: run `distillc eval MODEL --benchmark humaneval` first")
        return 0
    headers = ["benchmark", "corpus", "student", "model", "format", "n", "T", "problems", *ks, "Δpass@1",
               "acc.loss", "pass@1 by step", "run", "created"]
    print_table(headers, table_rows(runs, ks, bases, losses))
    if any(v is not None for v in losses.values()):
        print("\nacc.loss: (pass@1 of the teacher - pass@1 of the model) / pass@1 of the teacher, same benchmark "
              "and problems")
    if any(r.corpus and not r.linked for r in runs):
        print("\n(?) the corpus version named by the model's training record is not in this store")
    return 0


def write_html(args: argparse.Namespace) -> int:
    """The HTML report of one corpus version, written whole or not at all."""
    from compiler.report_html import render_html, report_data
    from compiler.store.db import Store
    from compiler.store.versions import resolve

    if args.ref is None:
        raise UsageError("report --html needs a corpus: distillc report CORPUS[@V] --html OUT.html")
    out = Path(args.html)
    if not out.parent.is_dir():
        raise DistillcError(f"{out}: directory {out.parent} does not exist")
    if out.is_dir():
        raise DistillcError(f"{out}: is a directory, expected an .html file path")
    with Store.open_readonly(store_path(args)) as store:
        version = resolve(store, args.ref)
        data = report_data(store, version, benchmark=args.benchmark)
    page = render_html(data)
    _write_atomically(out, page)
    if args.json:
        print_json({"ref": version.ref, "html": str(out), "bytes": out.stat().st_size})
    else:
        print(f"{version.ref}: report written to {out} ({out.stat().st_size / 1e6:.2f} MB)")
    return 0


def _write_atomically(out: Path, text: str) -> None:
    """Write a temporary file beside ``out``, then rename it: ``out`` is whole or untouched."""
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except OSError as exc:
        raise DistillcError(f"{out}: cannot write the report ({exc.strerror or exc})") from None
    finally:
        if tmp is not None and Path(tmp).exists():
            Path(tmp).unlink()
