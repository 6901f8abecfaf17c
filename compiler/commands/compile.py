"""distillc compile: run a recipe into a corpus version."""

from __future__ import annotations

import argparse

from compiler.commands.common import add_json, add_store, money, print_json, store_path

NAME = "compile"
HELP = "compile a recipe into a versioned corpus (re-running only what changed)"
EXAMPLE = "distillc compile recipes/quickstart.yaml --json"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", metavar="RECIPE", help="path to a recipe YAML file")
    add_store(p)
    add_json(p)
    p.add_argument("--budget", type=float, metavar="USD", default=None,
                   help="stop admitting new LLM calls once this many dollars are spent (exit 3)")


def run(args: argparse.Namespace) -> int:
    from compiler.runner import compile_recipe

    result = compile_recipe(args.recipe, store_path(args), budget_usd=args.budget)
    if args.json:
        print_json(result.to_json())
        return 0
    j = result.to_json()
    print(f"{j['ref']}  rows={j['rows']}  stages: {j['stages_run']} run, {j['stages_cached']} cached  "
          f"llm_calls={j['llm_calls']}  embeddings={j['embeddings_computed']}  {money(j['usd'])}  ({j['seconds']:.1f}s)")
    return 0
