"""distillc publish: push a corpus version to the Hugging Face Hub with its dataset card."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from compiler.commands.common import add_json, add_store, print_json, store_path
from compiler.errors import UsageError

NAME = "publish"
HELP = "publish a corpus version to the Hub (one config per variant, dataset card, a commit and tag per version)"
EXAMPLE = "distillc publish quickstart@1 --repo my-org/quickstart-corpus --dry-run data/exports/publish"
_REPO = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("ref", metavar="CORPUS[@VERSION]")
    p.add_argument("--repo", required=True, metavar="ORG/NAME", help="the Hub dataset repository")
    p.add_argument("--private", action="store_true", help="create the repository private")
    p.add_argument("--dry-run", metavar="DIR", default=None, help="write the files that would be uploaded to DIR")
    add_store(p)
    add_json(p)


def run(args: argparse.Namespace) -> int:
    from compiler.publish import build_files, hf_api, upload, write_dry_run
    from compiler.store.db import Store
    from compiler.store.versions import resolve

    if not _REPO.match(args.repo):
        raise UsageError(f"--repo {args.repo!r}: expected ORG/NAME")
    with Store.open_readonly(store_path(args)) as store:
        version = resolve(store, args.ref)
        files = build_files(store, version)
    if args.dry_run:
        write_dry_run(files, Path(args.dry_run))
        out = {"repo": args.repo, "ref": version.ref, "dry_run": args.dry_run, "files": sorted(files)}
    else:
        out = {"ref": version.ref, **upload(hf_api(), args.repo, version, files, private=args.private),
               "files": sorted(files)}
    if args.json:
        print_json(out)
    elif args.dry_run:
        print(f"{version.ref}: {len(files)} files written to {args.dry_run} (nothing uploaded)")
    else:
        print(f"{version.ref} -> https://huggingface.co/datasets/{args.repo} tag {out['tag']} ({out['reason']})")
    return 0
