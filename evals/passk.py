"""The unbiased pass@k estimator and its aggregation over problems.

For one problem with ``n`` samples of which ``c`` pass, the probability that at least one of ``k``
samples drawn without replacement passes is ``1 - C(n-c, k) / C(n, k)``. The ratio of binomials is
evaluated as a product, ``prod_{i=n-c+1..n} (1 - k/i)``, so no huge integers appear and the result is
bit-for-bit the figure the reference HumanEval harness reports for the same counts. A benchmark's
pass@k is the mean over problems, and is only defined when every problem has at least ``k`` samples.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np


def estimate(n: int, c: int, k: int) -> float:
    """pass@k of one problem with ``n`` samples, ``c`` of them correct."""
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if k < 1 or k > n:
        raise ValueError(f"pass@{k} needs 1 <= k <= n (n={n})")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def reportable(ks: Iterable[int], counts: Sequence[int]) -> list[int]:
    """The ``ks`` that every problem has enough samples for (sorted, without duplicates)."""
    fewest = min(counts) if counts else 0
    return sorted({k for k in ks if 1 <= k <= fewest})


def pass_at_k(results: Mapping[str, Sequence[bool]], ks: Iterable[int]) -> dict[str, float]:
    """``{"pass@k": mean over problems}`` for each ``k`` no larger than every problem's sample
    count. ``results`` maps a task id to the verdicts of its samples."""
    totals = [len(v) for v in results.values()]
    correct = [sum(bool(x) for x in v) for v in results.values()]
    if not totals:
        return {}
    out = {}
    for k in reportable(ks, totals):
        per_task = np.array([estimate(n, c, k) for n, c in zip(totals, correct)])
        out[f"pass@{k}"] = float(per_task.mean())
    return out


def parse_ks(text: str) -> list[int]:
    """``"1,10"`` → ``[1, 10]``; raises ValueError on anything but positive integers."""
    try:
        ks = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"--k takes comma-separated positive integers, got {text!r}") from None
    if not ks or any(k < 1 for k in ks):
        raise ValueError(f"--k takes comma-separated positive integers, got {text!r}")
    return sorted(set(ks))


__all__ = ["estimate", "parse_ks", "pass_at_k", "reportable"]
