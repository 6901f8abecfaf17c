"""Embedded-model load time and greedy generation speed on this machine.

Prints: the one-time GGUF conversion (into a fresh temporary models directory, unless
``--models-dir`` points at an existing conversion), a cached load, and greedy tokens/s for one
sequence and for batches of 4 and 8 distinct chat prompts.

    .venv/bin/python bench/generation_speed.py --max-new-tokens 64 [--threads 1]

On a machine shared with other CPU-heavy processes, torch's default of one thread per core
oversubscribes the CPUs and generation can be several times slower than with ``--threads 1``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch

from evals.generate import generate
from evals.models import clear_loaded_models, ensure_embedded_model, load_model

TASKS = [
    "Write a Python function factorial(n) that returns n!.",
    "Write a Python function is_prime(n) that tells whether n is prime.",
    "Write a Python function that reverses the words of a sentence.",
    "Write a Python function that returns the n-th Fibonacci number.",
    "Write a Python function that counts the vowels in a string.",
    "Write a Python function that merges two sorted lists.",
    "Write a Python function that checks whether a string is a palindrome.",
    "Write a Python function that returns the largest element of a list.",
]


def _timed(action):
    start = time.perf_counter()
    result = action()
    return result, time.perf_counter() - start


def measure_loading(models_dir: Path | None) -> Path:
    """Convert (or find) the embedded model, then time a load from the converted checkpoint."""
    root = models_dir or Path(tempfile.mkdtemp(prefix="distillc-bench-models-"))
    fresh = not (root / "smollm2-135m").exists()
    target, seconds = _timed(lambda: ensure_embedded_model(root))
    label = "first conversion (GGUF -> safetensors)" if fresh else "resolve (already converted)"
    print(f"{label:<44} {seconds:8.2f} s")
    clear_loaded_models()
    _, seconds = _timed(lambda: load_model(str(target)))
    print(f"{'cached load (from_pretrained, float32)':<44} {seconds:8.2f} s")
    return target


def measure_speed(target: Path, batch: int, max_new_tokens: int) -> None:
    """Greedy tokens/s for ``batch`` different prompts generated together."""
    model, tokenizer = load_model(str(target))
    prompts = [[{"role": "user", "content": task}] for task in TASKS[:batch]]
    rows, seconds = _timed(lambda: generate(model, tokenizer, prompts, max_new_tokens=max_new_tokens,
                                            batch_size=batch))
    tokens = sum(r.completion_tokens for r in rows)
    print(f"greedy batch {batch:<2} {tokens:5d} tokens in {seconds:6.2f} s  "
          f"{tokens / seconds:7.1f} tokens/s  ({tokens / seconds / batch:5.1f} per sequence)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--models-dir", type=Path, default=None,
                        help="reuse this models directory instead of converting afresh")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (on a busy machine 1 can beat the default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; "
          f"torch threads: {torch.get_num_threads()}")
    target = measure_loading(args.models_dir)
    try:
        generate(*load_model(str(target)), ["def f():"], max_new_tokens=2)  # warm-up
        for batch in args.batches:
            measure_speed(target, batch, args.max_new_tokens)
    finally:
        if args.models_dir is None:
            shutil.rmtree(target.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
