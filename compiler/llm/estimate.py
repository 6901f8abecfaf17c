"""Cost estimates for stages not yet run (``distillc plan --estimate``): low / expected / high.

Prompt sizes come from prompts the caller samples and counts; completion sizes from the ledger's
past successful calls of the same stage (:func:`compiler.llm.ledger.length_stats`), or, with no
history, from the request's ``max_tokens`` (low: nothing, expected: half, high: all of it).
Low and high use the 10th and 90th percentiles, so they bound the typical run, not the worst one.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence

from compiler.llm.prices import Price
from compiler.llm.types import Usage


@dataclass(frozen=True)
class Range:
    low: float
    expected: float
    high: float


@dataclass(frozen=True)
class Estimate:
    calls: int
    prompt_tokens: Range
    completion_tokens: Range
    usd: Range

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _percentile(values: Sequence[int], q: float) -> float:
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _prompt_range(sampled: Sequence[int]) -> Range:
    if not sampled:
        return Range(0.0, 0.0, 0.0)
    return Range(_percentile(sampled, 0.1), sum(sampled) / len(sampled), _percentile(sampled, 0.9))


def _completion_range(past: dict[str, Any] | None, max_tokens: int) -> Range:
    if past and past.get("n"):
        return Range(float(past["completion_tokens_p10"]), float(past["completion_tokens_mean"]),
                     float(past["completion_tokens_p90"]))
    return Range(0.0, max_tokens / 2, float(max_tokens))


def estimate(price: Price, *, calls: int, sampled_prompt_tokens: Sequence[int], max_tokens: int,
             past: dict[str, Any] | None = None, batch: bool = False) -> Estimate:
    """Totals for ``calls`` requests: per-call token ranges times the number of calls."""
    p, c = _prompt_range(sampled_prompt_tokens), _completion_range(past, max_tokens)

    def usd(prompt: float, completion: float) -> float:
        return price.cost(Usage(prompt_tokens=round(prompt), completion_tokens=round(completion)), batch=batch)

    return Estimate(
        calls=calls,
        prompt_tokens=Range(p.low * calls, p.expected * calls, p.high * calls),
        completion_tokens=Range(c.low * calls, c.expected * calls, c.high * calls),
        usd=Range(usd(p.low * calls, c.low * calls), usd(p.expected * calls, c.expected * calls),
                  usd(p.high * calls, c.high * calls)),
    )
