"""distillc show: one corpus version's funnel per stage."""

from __future__ import annotations

import argparse

from compiler.commands.common import add_json, add_store, money, print_json, print_table, store_path

NAME = "show"
HELP = ("show a corpus version: rows in/out, drops by reason, LLM calls and cost per stage, and the "
        "funnel of each method it was built with")
EXAMPLE = "distillc show quickstart@1 --json"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("ref", metavar="CORPUS[@VERSION]", help="corpus name, optionally @version (default: latest)")
    add_store(p)
    add_json(p)


def run(args: argparse.Namespace) -> int:
    from compiler.inspect import funnel, variant_counts
    from compiler.methods import all_methods, funnels
    from compiler.store.db import Store
    from compiler.store.versions import resolve

    with Store.open_readonly(store_path(args)) as store:
        v = resolve(store, args.ref)
        stages = funnel(store, v)
        variants = variant_counts(store, v)
        methods = funnels(store, v)
    out = {"corpus": v.corpus, "version": v.version, "ref": v.ref, "fingerprint": v.fingerprint,
           "rows": v.rows, "created_at": str(v.created_at), "variants": variants, "stages": stages,
           "llm_calls": sum(s["llm_calls"] for s in stages), "usd": sum(s["usd"] for s in stages),
           "library_versions": v.library_versions}
    out["methods"] = sorted(methods)
    out.update(methods)                     # each method's own funnel under its name ("persd", ...)
    if args.json:
        print_json(out)
        return 0
    print(f"{v.ref}  rows={v.rows}  fingerprint={v.fingerprint}  created {str(v.created_at)[:19]}")
    print_table(["stage", "uses", "in", "out", "dropped", "llm_calls", "usd"],
                [[s["name"], s["uses"], s["rows_in"], s["rows_out"],
                  ", ".join(f"{k}={n}" for k, n in s["dropped"].items()) or "-",
                  s["llm_calls"], money(s["usd"])] for s in stages])
    if variants:
        print("variants: " + ", ".join(f"{k}={n}" for k, n in variants.items()))
    for method in all_methods():
        if method.name in methods:
            for line in method.render(methods[method.name]):
                print(line)
    return 0
