"""distillc plan: show a recipe's stages, fingerprints and what is already cached (read-only)."""

from __future__ import annotations

import argparse
from pathlib import Path

from compiler.commands.common import add_json, add_store, print_json, print_table, store_path

NAME = "plan"
HELP = "list a recipe's stages with their fingerprints and cache status, changing nothing"
EXAMPLE = "distillc plan recipes/quickstart.yaml --json"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", metavar="RECIPE", help="path to a recipe YAML file")
    add_store(p)
    add_json(p)
    p.add_argument("--estimate", action="store_true",
                   help="estimate calls, tokens and dollars per stage (low/expected/high): exact where the "
                   "input is known, else from this store's history of the stage, else from its priors")


def run(args: argparse.Namespace) -> int:
    from compiler.plan import make_plan
    from compiler.recipe.loader import load_recipe
    from compiler.store.db import Store
    from compiler.store.outputs import cached_fingerprints

    plan = make_plan(load_recipe(args.recipe))
    path = store_path(args)
    cached: set[str] = set()
    if Path(path).exists():
        with Store.open_readonly(path) as store:
            cached = cached_fingerprints(store, [s.fingerprint for s in plan.steps])
    stages = [{"name": s.name, "uses": s.uses, "version": s.version, "fingerprint": s.fingerprint,
               "cached": s.fingerprint in cached, "calls": list(s.roles)} for s in plan.steps]
    out = {"corpus": plan.loaded.recipe.name, "fingerprint": plan.final.fingerprint, "stages": stages}
    if getattr(args, "estimate", False):
        from compiler.estimate import estimate_plan

        out["estimate"] = estimate_plan(plan, path)
    if args.json:
        print_json(out)
        return 0
    print_table(["#", "stage", "uses", "fingerprint", "cached", "calls"],
                [[i, s["name"], s["uses"], s["fingerprint"], "yes" if s["cached"] else "no",
                  ",".join(s["calls"])] for i, s in enumerate(stages)])
    if "estimate" in out:
        _print_estimate(out["estimate"])
    return 0


def _print_estimate(est: dict) -> None:
    from compiler.commands.common import money

    def rng(d: dict, fmt=str) -> str:
        return f"{fmt(d['low'])} / {fmt(d['expected'])} / {fmt(d['high'])}"

    print(f"\nestimate over {est['tasks']} tasks (low / expected / high):")
    rows = [[s["name"], "cached" if s["cached"] else s.get("basis", ""), rng(s["calls"]),
             rng(s.get("prompt_tokens", {"low": 0, "expected": 0, "high": 0})),
             rng(s.get("completion_tokens", {"low": 0, "expected": 0, "high": 0})), rng(s["usd"], money)]
            for s in est["stages"] if "calls" in s]
    print_table(["stage", "basis", "calls", "prompt tokens", "completion tokens", "usd"], rows)
    print(f"total: {rng(est['usd'], money)}")
