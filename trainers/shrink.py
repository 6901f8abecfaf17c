"""A smaller student built from a model's own config: the same architecture, hidden size and tokenizer
with fewer layers — so it shares the teacher's vocabulary, as knowledge distillation needs.

``init: layers`` (the default) starts it from the teacher's embeddings, final norm and an evenly
spaced subset of its layers (the first and the last included), the usual way to initialise a
distilled student by layer dropping; ``init: random`` gives fresh weights from the config. Nothing is
downloaded or committed: the student is written where asked, with a ``distillc_shrink.json`` saying
what it was made from.

    python -m trainers.shrink smollm2-135m --layers 6 --out data/models/smollm2-akd-student
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trainers.errors import TrainError

RECORD = "distillc_shrink.json"
_LAYER = re.compile(r"\.layers\.(\d+)\.")


def kept_layers(total: int, layers: int) -> list[int]:
    """``layers`` indices spread evenly over ``total``, first and last included."""
    if layers == 1:
        return [0]
    return [round(i * (total - 1) / (layers - 1)) for i in range(layers)]


def shrink(model: str, out_dir: str | Path, *, layers: int, init: str = "layers", seed: int = 0) -> dict[str, Any]:
    """Build and save the smaller model; returns what ``distillc_shrink.json`` records."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from evals.models import ModelError, resolve_model

    try:
        source = resolve_model(model)
    except ModelError as exc:
        raise TrainError(str(exc)) from exc
    config = AutoConfig.from_pretrained(source)
    total = config.num_hidden_layers
    if not 1 <= layers < total:
        raise TrainError(f"--layers: {model!r} has {total} layers; choose 1 to {total - 1}")
    keep = kept_layers(total, layers)
    config.num_hidden_layers = layers
    if isinstance(getattr(config, "layer_types", None), list):
        config.layer_types = [config.layer_types[i] for i in keep]
    torch.manual_seed(seed)
    student = AutoModelForCausalLM.from_config(config)
    if init == "layers":
        teacher = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
        student.load_state_dict(_subset(teacher.state_dict(), keep))
    elif init != "random":
        raise TrainError(f"--init: layers or random, got {init!r}")
    out = Path(out_dir)
    student.save_pretrained(out)
    AutoTokenizer.from_pretrained(source).save_pretrained(out)
    record = {"from": model, "source": source, "layers": layers, "of": total, "kept": keep if init == "layers" else None,
              "init": init, "parameters": sum(p.numel() for p in student.parameters())}
    (out / RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return record


def _subset(state: dict[str, Any], keep: list[int]) -> dict[str, Any]:
    """The teacher's weights renumbered for the student: layer ``keep[j]`` becomes layer ``j``."""
    index = {old: new for new, old in enumerate(keep)}
    out = {}
    for key, value in state.items():
        found = _LAYER.search(key)
        if found is None:
            out[key] = value
        elif int(found.group(1)) in index:
            out[_LAYER.sub(f".layers.{index[int(found.group(1))]}.", key, count=1)] = value
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m trainers.shrink", description=__doc__.splitlines()[0],
                                epilog="example:\n  python -m trainers.shrink smollm2-135m --layers 6 "
                                "--out data/models/smollm2-akd-student",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="smollm2-135m, a local model directory or a Hub id")
    p.add_argument("--layers", type=int, required=True, help="layers of the smaller model")
    p.add_argument("--out", required=True, metavar="DIR", help="where to write it")
    p.add_argument("--init", choices=("layers", "random"), default="layers",
                   help="layers: from an evenly spaced subset of the model's layers (default); random")
    args = p.parse_args(argv)
    try:
        record = shrink(args.model, args.out, layers=args.layers, init=args.init)
    except TrainError as exc:
        print(f"trainers.shrink: error: {exc}", file=sys.stderr)
        return 1
    print(f"{record['parameters'] / 1e6:.1f}M parameters, {record['layers']} of {record['of']} layers -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
