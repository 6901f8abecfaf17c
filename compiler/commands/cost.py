"""distillc cost: what a corpus version cost, from the ledger."""

from __future__ import annotations

import argparse

from compiler.commands.common import add_json, add_store, money, print_json, print_table, store_path

NAME = "cost"
HELP = "what a corpus version cost: totals from the call ledger, by stage, model or kept example"
EXAMPLE = "distillc cost quickstart --by stage"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("ref", metavar="CORPUS[@VERSION]")
    p.add_argument("--by", choices=("stage", "model", "example"), default=None,
                   help="break the total down (example: each kept record with its ancestors and its "
                        "share of discarded siblings)")
    p.add_argument("--limit", type=int, default=20,
                   help="examples printed with --by example, and interrupted calls listed (default 20)")
    add_store(p)
    add_json(p)


def run(args: argparse.Namespace) -> int:
    from compiler.cost import version_cost
    from compiler.store.db import Store
    from compiler.store.versions import resolve

    with Store.open_readonly(store_path(args)) as store:
        out = version_cost(store, resolve(store, args.ref), args.by)
    if args.json:
        print_json(out)
        return 0
    t = out["total"]
    print(f"{out['ref']}: {money(out['usd'])} over {t['calls']} calls ({t['cache_hits']} cache hits, "
          f"{t['failed']} failed, {t['interrupted']} interrupted); {t['prompt_tokens']} prompt + "
          f"{t['completion_tokens']} completion tokens; cached answers reused worth {money(out['reused_usd'])}")
    print_interrupted(out["interrupted"], args.limit)
    if out.get("groups") is not None:
        key = out["by"]
        print_table([key, "calls", "cache_hits", "failed", "prompt_tok", "completion_tok", "usd"],
                    [[g[key] + (f" ({g['backend']})" if key == "model" else ""), g["calls"], g["cache_hits"],
                      g["failed"], g["prompt_tokens"], g["completion_tokens"], money(g["usd"])]
                     for g in out["groups"]])
    if out.get("examples") is not None:
        print(f"per kept example: {money(out['per_example_usd'])} on average")
        print_table(["variant", "examples", "usd", "mean"],
                    [[v, g["examples"], money(g["usd"]), money(g["mean_usd"])] for v, g in out["by_variant"].items()])
        rows = sorted(out["examples"], key=lambda e: -e["usd"])[: args.limit]
        print_table(["row_id", "task_id", "variant", "usd", "ancestors", "siblings"],
                    [[e["row_id"], e["task_id"], e["variant"], money(e["usd"]), money(e["ancestors_usd"]),
                      money(e["siblings_usd"])] for e in rows])
    return 0


def print_interrupted(found: dict, limit: int) -> None:
    """Calls sent whose answer was never recorded (the process died): not in the total, each with the
    most it could have cost."""
    if not found["calls"]:
        return
    unbounded = f"; {found['unbounded']} from an older distillc carry no bound" if found["unbounded"] else ""
    print(f"{found['calls']} interrupted calls (sent, no answer recorded when the process ended; not in the "
          f"total): ~{found['est_prompt_tokens']} prompt tokens (estimated), at most {found['max_prompt_tokens']} "
          f"prompt + {found['max_completion_tokens']} completion tokens, at most {money(found['max_usd'])}{unbounded}")
    rows = found["rows"][:limit]
    print_table(["call_id", "stage", "model", "sent_at", "est_prompt", "max_prompt", "max_completion", "max_usd"],
                [[r["call_id"], r["stage"], r["model"], str(r["sent_at"])[:19], r["est_prompt_tokens"],
                  r["max_prompt_tokens"], r["max_completion_tokens"],
                  "?" if r["max_usd"] is None else money(r["max_usd"])] for r in rows])
    if len(found["rows"]) > len(rows):
        print(f"... {len(found['rows']) - len(rows)} more (--limit N, or --json for all)")
