"""Peak memory and time of each distillation loss (forward + backward) at a realistic vocabulary.

Each measurement runs in a fresh process: it builds the student and teacher logits ``[B, T, V]``
(bf16 by default, as a bf16 model returns them), notes its resident memory, runs the loss forward
and backward, and reports the peak resident memory above that baseline (``ru_maxrss``) and the wall
time. TRL's ``generalized_jsd_loss`` (dense, whole-tensor float32) runs too, as a reference point.

    .venv/bin/python bench/kd_losses.py --vocab 49152 --batch 2 --seq 512 [--dtype float32]

The logits alone take ``B·T·V`` elements each (2 x 512 x 49,152 bf16 = 96 MiB; float32 192 MiB);
the student's gradient is one more tensor of that size in its dtype, whatever the loss.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

NAMES = ("fkl", "rkl", "jsd", "skl", "srkl", "akl", "trl-jsd")


def rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def measure(name: str, vocab: int, batch: int, seq: int, dtype: str, threads: int) -> dict:
    import torch
    from trl.experimental.gkd import GKDTrainer

    from trainers.losses import distill_loss

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    kind = getattr(torch, dtype)
    student = torch.empty(batch, seq, vocab, dtype=kind).normal_().requires_grad_(True)
    teacher = torch.empty(batch, seq, vocab, dtype=kind).normal_()
    labels = torch.randint(0, vocab, (batch, seq))
    labels[:, : seq // 4] = -100                        # a prompt quarter, not trained
    base = max(rss_mib(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    start = time.perf_counter()
    if name == "trl-jsd":
        value = GKDTrainer.generalized_jsd_loss(student, teacher, labels, beta=0.5)
    else:
        value = distill_loss(student, teacher, labels, loss=name)
    value.backward()
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"loss": name, "value": float(value), "seconds": round(seconds, 2),
            "peak_above_inputs_mib": round(peak - base, 1), "inputs_mib": round(base, 1)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--vocab", type=int, default=49152)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--seq", type=int, default=512)
    p.add_argument("--dtype", default="bfloat16", choices=("bfloat16", "float32"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--only", metavar="NAME", choices=NAMES, help="measure one loss in this process")
    args = p.parse_args()
    if args.only:
        os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
        print(json.dumps(measure(args.only, args.vocab, args.batch, args.seq, args.dtype, args.threads)))
        return 0
    size = args.batch * args.seq * args.vocab * (2 if args.dtype == "bfloat16" else 4) / 2**20
    print(f"B={args.batch} T={args.seq} V={args.vocab} {args.dtype}: each logits tensor {size:.0f} MiB; "
          f"{args.threads} thread(s)")
    print(f"{'loss':8} {'peak above inputs (MiB)':>24} {'time (s)':>9}")
    for name in NAMES:
        argv = [sys.executable, __file__, "--only", name, "--vocab", str(args.vocab), "--batch", str(args.batch),
                "--seq", str(args.seq), "--dtype", args.dtype, "--threads", str(args.threads)]
        done = subprocess.run(argv, capture_output=True, text=True, check=True)
        row = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{row['loss']:8} {row['peak_above_inputs_mib']:>24.1f} {row['seconds']:>9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
