"""distillc export: write a corpus version as a Hugging Face dataset, parquet or JSONL."""

from __future__ import annotations

import argparse

from compiler.commands.common import add_json, add_store, print_json, store_path

NAME = "export"
HELP = ("export a corpus version (hf: one Dataset that datasets.load_from_disk loads and TRL's SFTTrainer trains "
        "on unchanged; a corpus with several variants puts its default variant there and the others under "
        "OUT/variants/NAME, unless --variant picks one)")
EXAMPLE = "distillc export quickstart data/exports/quickstart --format hf"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("ref", metavar="CORPUS[@VERSION]")
    p.add_argument("out", metavar="OUT", help="output directory")
    p.add_argument("--format", choices=("hf", "parquet", "jsonl"), default="hf")
    p.add_argument("--variant", metavar="NAME", default=None, help="export only this variant (e.g. PERsD)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    add_store(p)
    add_json(p)


def run(args: argparse.Namespace) -> int:
    from compiler.export import export_version
    from compiler.store.db import Store
    from compiler.store.versions import resolve

    with Store.open_readonly(store_path(args)) as store:
        info = export_version(store, resolve(store, args.ref), args.out, args.format,
                              variant=args.variant, overwrite=args.overwrite)
    if args.json:
        print_json(info)
    else:
        line = f"{info['corpus']}@{info['version']}: {info['rows']} rows -> {info['path']} ({info['format']})"
        if info.get("variant_dirs"):
            line += (f"; variant {info['default_variant']} at the top (what load_from_disk returns), "
                     f"{', '.join(info['variant_dirs'])} under variants/")
        print(line)
    return 0
