"""distillc modules: the module database (verified functions AMR-Evol retrieves): list, show, search
and import."""

from __future__ import annotations

import argparse
from collections import Counter
from typing import Any

from compiler.commands.common import add_json, add_store, print_json, print_table, store_path
from compiler.errors import DistillcError

NAME = "modules"
HELP = "the module database: `ls`, `show ID`, `search TEXT [--k K]`, `import FILE.jsonl`"
EXAMPLE = "distillc modules ls --json"
RESULT_KEYS = ("id", "name", "signature", "score", "verified", "origin")


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    ls = sub.add_parser("ls", help="list the modules (oldest first)")
    ls.add_argument("--origin", choices=("seed", "evolved", "imported"), help="only modules of this origin")
    ls.add_argument("--version", metavar="CORPUS[@VERSION]", help="only the modules that version's retrieval saw")
    ls.add_argument("--limit", type=int, default=50, help="rows printed (default 50; --json prints all)")
    show = sub.add_parser("show", help="one module: code, tests, origin, the version that added it")
    show.add_argument("id", metavar="ID", help="module id or a unique prefix")
    search = sub.add_parser("search", help="modules nearest to a description, by the stage's embedder and cosine")
    search.add_argument("text", metavar="TEXT")
    search.add_argument("--k", type=int, default=5, help="how many (default 5)")
    search.add_argument("--embedder", metavar="MODEL", help="embedding model (default: the one the database was "
                        "embedded with)")
    imp = sub.add_parser("import", help="add a library of functions (JSONL rows: name, code, optional tests); "
                         "modules with tests are verified in the sandbox, failing ones are not added")
    imp.add_argument("file", metavar="FILE.jsonl")
    imp.add_argument("--embedder", metavar="MODEL", default="all-minilm-l6-v2",
                     help="embedding model (default: the embedded all-minilm-l6-v2)")
    imp.add_argument("--embedder-url", metavar="URL", help="embed with an OpenAI-compatible /v1/embeddings endpoint")
    imp.add_argument("--cpu-seconds", type=float, default=5.0, help="CPU-time limit of each module's tests")
    for q in (ls, show, search, imp):
        add_store(q)
        add_json(q)


def run(args: argparse.Namespace) -> int:
    return {"ls": _ls, "show": _show, "search": _search, "import": _import}[args.action](args)


def _horizon(store, ref: str | None) -> int | None:
    """The horizon of a version's retrieval (the last one of its stages that recorded one)."""
    if ref is None:
        return None
    from compiler.store import outputs
    from compiler.store.versions import resolve

    version = resolve(store, ref)
    for stage in reversed(version.stages):
        table = outputs.table_name(stage["fingerprint"])
        cols = {r[0] for r in store.con.execute(f"DESCRIBE {table}").fetchall()}
        if "db_horizon" in cols:
            return int(store.con.execute(f"SELECT coalesce(max(db_horizon), 0) FROM {table}").fetchall()[0][0])
    raise DistillcError(f"{version.ref} did not retrieve modules (no retrieve_modules stage)")


def _ls(args: argparse.Namespace) -> int:
    from compiler.store import modules as db
    from compiler.store.db import Store

    with Store.open_readonly(store_path(args)) as store:
        frame = db.listing(store, _horizon(store, args.version), origins=[args.origin] if args.origin else None)
    rows = frame.drop("seq").to_dicts() if frame.height else []
    if args.json:
        print_json({"count": len(rows), "modules": rows})
        return 0
    print(f"{len(rows)} modules" + (f" (first {args.limit})" if len(rows) > args.limit else ""))
    print_table(["id", "name", "signature", "verified", "origin", "created"],
                [[r["module_id"], r["name"], _short(r["signature"]), r["verified"], r["origin"], str(r["created_at"])[:19]]
                 for r in rows[:args.limit]])
    return 0


def _short(text: str, width: int = 70) -> str:
    return text if len(text) <= width else text[:width - 3] + "..."


def _show(args: argparse.Namespace) -> int:
    from compiler.store import modules as db
    from compiler.store.db import Store
    from compiler.store.versions import list_versions

    with Store.open_readonly(store_path(args)) as store:
        row = db.get(store, args.id)
        row["added_by"] = [v.ref for v in list_versions(store) if row["added_fp"] in v.fingerprints]
    if args.json:
        print_json(row)
        return 0
    added = ", ".join(row["added_by"]) or ("distillc modules import" if row["added_fp"] is None else row["added_fp"])
    print(f"{row['module_id']}  {row['name']}  origin={row['origin']}  verified={row['verified']}  added by {added}"
          + (f"  ({row['source']})" if row["source"] else ""))
    print(row["signature"])
    print("\n" + row["code"].rstrip())
    if row["tests"]:
        print("\ntests:\n" + "\n".join(row["tests"]))
    return 0


def _stored_embedder(store) -> Any:
    from compiler.embed.cache import stored_config
    from compiler.recipe.schema import EmbedderConfig

    keys = Counter(k for (k,) in store.con.execute("SELECT embedder FROM modules").fetchall())
    config = stored_config(store, keys.most_common(1)[0][0]) if keys else None
    return EmbedderConfig.model_validate(config) if config else EmbedderConfig()


def _search(args: argparse.Namespace) -> int:
    from compiler.embed import Embeddings
    from compiler.moduledb import ModuleIndex
    from compiler.recipe.schema import EmbedderConfig
    from compiler.store import modules as db
    from compiler.store.db import Store

    if args.k < 1:
        raise DistillcError(f"--k must be at least 1, got {args.k}")
    with Store.open_readonly(store_path(args)) as store:
        have = db.count(store)
        if have < args.k:
            raise DistillcError(f"the module database holds {have} module(s), fewer than --k {args.k}"
                                + ("" if have else " (add some with `distillc modules import FILE.jsonl`)"))
        config = EmbedderConfig(model=args.embedder) if args.embedder else _stored_embedder(store)
        embeddings = Embeddings(config, store)
        index = ModuleIndex.load(store, embeddings)
        hits = index.search(embeddings.vectors([args.text]), args.k)[0]
    rows = [{"id": index.frame["module_id"][i], "name": index.frame["name"][i],
             "signature": index.frame["signature"][i], "score": round(score, 4),
             "verified": index.frame["verified"][i], "origin": index.frame["origin"][i]} for i, score in hits]
    if args.json:
        print_json({"query": args.text, "embedder": config.key, "k": args.k, "results": rows})
        return 0
    print_table(["score", *RESULT_KEYS[:3], "verified", "origin"],
                [[f"{r['score']:.3f}", r["id"], r["name"], _short(r["signature"]), r["verified"], r["origin"]]
                 for r in rows])
    return 0


def _import(args: argparse.Namespace) -> int:
    from pathlib import Path

    from compiler.embed import Embeddings, check
    from compiler.moduledb import add_modules
    from compiler.moduledb.library import read_library, verify
    from compiler.recipe.schema import EmbedderConfig
    from compiler.store import modules as db
    from compiler.store.db import Store
    from evals.sandbox import run_many

    modules = read_library(Path(args.file), args.file)        # a bad row stops here: nothing written
    config = EmbedderConfig(model=args.embedder, backend="openai" if args.embedder_url else "sentence-transformers",
                            base_url=args.embedder_url)
    check(config)
    kept, failed = verify(modules, lambda jobs: run_many(jobs), args.cpu_seconds)
    with Store.open(store_path(args)) as store:
        present = db.existing(store, [m.module_id for m in kept])
        embeddings = Embeddings(config, store)
        added = add_modules(store, embeddings, [m for m in kept if m.module_id not in present], None)
    out = {"file": args.file, "embedder": config.key, "added": len(added), "already_present": len(present),
           "verified": sum(1 for m in kept if m.verified and m.module_id in added),
           "unverified": sum(1 for m in kept if not m.verified and m.module_id in added),
           "failed": [{"name": m.name, "source": m.source, "reason": why} for m, why in failed],
           "embeddings_computed": embeddings.computed, "ids": added}
    if args.json:
        print_json(out)
        return 0
    print(f"{args.file}: added {out['added']} modules ({out['verified']} verified, {out['unverified']} without "
          f"tests), {out['already_present']} already present, {len(failed)} failed their tests")
    for f in out["failed"]:
        print(f"  not added: {f['name']} ({f['source']}): {f['reason']}")
    return 0
