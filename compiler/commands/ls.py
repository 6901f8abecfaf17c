"""distillc ls: corpora and their versions."""

from __future__ import annotations

import argparse

from compiler.commands.common import add_json, add_store, print_json, print_table, store_path

NAME = "ls"
HELP = "list corpora and their versions"
EXAMPLE = "distillc ls --json"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("corpus", nargs="?", metavar="CORPUS", help="only this corpus")
    add_store(p)
    add_json(p)


def run(args: argparse.Namespace) -> int:
    from compiler.store.db import Store
    from compiler.store.versions import list_versions, resolve

    with Store.open_readonly(store_path(args)) as store:
        if args.corpus:
            resolve(store, args.corpus)  # an unknown corpus is an error
        found = list_versions(store, args.corpus)
    rows = [{"corpus": v.corpus, "version": v.version, "ref": v.ref, "rows": v.rows,
             "fingerprint": v.fingerprint, "created_at": str(v.created_at)} for v in found]
    if args.json:
        corpora: dict[str, list] = {}
        for r in rows:
            corpora.setdefault(r["corpus"], []).append(r)
        print_json({"corpora": [{"name": k, "versions": v} for k, v in corpora.items()]})
        return 0
    print_table(["corpus", "version", "rows", "fingerprint", "created"],
                [[r["corpus"], r["version"], r["rows"], r["fingerprint"], r["created_at"][:19]] for r in rows])
    return 0
