"""``tier``: SODA's difficulty tiers (METHODS §3(b) S3, §3(h)3), from the views alone.

The rules are data in the recipe: bands of the judge's score over [0, 6] and of the pass rate over
[0, 1], written as intervals (``"[0, 2]"``, ``"(2, 5)"``, ``"[5, 6]"``), and the tier a failed static
check forces. Bands must cover their range exactly, without a gap or an overlap: the recipe is refused
at load otherwise, with the place where they go wrong.

A question's tier is the harder of its score tier and its check tier (a failed check makes it
``hard`` by default) and, when its task has tests, of its pass-rate tier too (``combine: harder``;
``combine: pass_rate`` lets the pass rate decide alone where there is one). The defaults are §3(h)3
(hard: the check fails or S ≤ 2; medium: 2 < S < 5; easy: S ≥ 5) and, ours, pass-rate bands with
every sample passing for easy and fewer than half for hard. The inputs and each partial verdict are
stored with the tier (``tier_evidence``), so any tier can be recomputed from stored feedback alone
(:meth:`Rules.assign`), and new thresholds re-run this stage and what follows without a model call.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import polars as pl
from pydantic import Field, model_validator

from compiler.methods.soda.questions import TIERS, Tier
from compiler.stages.base import Columns, Params, Stage, StageOutput, register, rejections

if TYPE_CHECKING:
    from compiler.runner import StageContext

_INTERVAL = re.compile(r"^\s*([\[(])\s*([0-9]+(?:\.[0-9]+)?)\s*,\s*([0-9]+(?:\.[0-9]+)?)\s*([\])])\s*$")
_HARDNESS = {"easy": 0, "medium": 1, "hard": 2}


@dataclass(frozen=True)
class Band:
    low: float
    high: float
    low_closed: bool
    high_closed: bool
    text: str

    def __contains__(self, x: float) -> bool:
        above = x >= self.low if self.low_closed else x > self.low
        below = x <= self.high if self.high_closed else x < self.high
        return above and below


def parse_band(text: str) -> Band:
    """``[a, b]``, ``(a, b)``, ``[a, b)`` or ``(a, b]``; raises ValueError for anything else."""
    m = _INTERVAL.match(text)
    if m is None:
        raise ValueError(f"{text!r} is not an interval like \"[0, 2]\" or \"(2, 5)\"")
    band = Band(float(m.group(2)), float(m.group(3)), m.group(1) == "[", m.group(4) == "]", text.strip())
    if band.low > band.high or (band.low == band.high and not (band.low_closed and band.high_closed)):
        raise ValueError(f"{text!r} is empty")
    return band


def check_cover(bands: dict[str, str], low: float, high: float, what: str) -> dict[str, Band]:
    """The parsed bands when they cover [low, high] exactly, each point in one band; ValueError naming
    the gap or the overlap otherwise."""
    parsed = {tier: parse_band(text) for tier, text in bands.items()}
    order = sorted(parsed.items(), key=lambda kv: (kv[1].low, not kv[1].low_closed))
    first, last = order[0][1], max(parsed.values(), key=lambda b: (b.high, b.high_closed))
    if first.low < low or last.high > high:
        raise ValueError(f"{what} bands go outside [{low:g}, {high:g}]")
    if first.low > low or not first.low_closed:
        raise ValueError(f"{what} bands leave a gap at {low:g}: no band starts there, closed")
    for (t1, a), (t2, b) in zip(order, order[1:]):
        if a.high > b.low or (a.high == b.low and a.high_closed and b.low_closed):
            raise ValueError(f"{what} bands overlap: {t1} {a.text} and {t2} {b.text}")
        if a.high < b.low or not (a.high_closed or b.low_closed):
            raise ValueError(f"{what} bands leave a gap between {t1} {a.text} and {t2} {b.text}")
    if last.high < high or not last.high_closed:
        raise ValueError(f"{what} bands leave a gap at {high:g}: no band ends there, closed")
    return parsed


def harder(*tiers: str | None) -> str | None:
    found = [t for t in tiers if t is not None]
    return max(found, key=_HARDNESS.__getitem__) if found else None


def band_of(bands: dict[str, Band], x: float | None) -> str | None:
    return None if x is None else next(t for t, b in bands.items() if x in b)


@register
class AssignTier(Stage):
    """Assigns each question ``easy``, ``medium`` or ``hard`` from its views, with rules written in the
    recipe (defaults: METHODS §3(h)3 for the score and the check, and pass-rate bands when the task
    has tests). ``score_bands`` split the judge's total over [0, 6] and ``pass_rate_bands`` the pass
    rate over [0, 1], as intervals that must cover the range without gap or overlap; a static check
    that fails forces ``failed_check`` (one that passes gives ``passed_check``, none by default); the
    tier is the harder of the verdicts (``combine: harder``),
    or the pass-rate tier where there is one (``combine: pass_rate``). Adds ``tier`` and
    ``tier_evidence`` (JSON: the score, check and pass rate read, and each partial verdict). Drops the
    questions no rule gives a tier (``no_views``: no score, no check verdict, no pass rate)."""

    name = "tier"
    version = 1
    scope = "row"

    class Params(Params):
        score_bands: dict[Tier, str] = Field(
            default_factory=lambda: {"hard": "[0, 2]", "medium": "(2, 5)", "easy": "[5, 6]"}, min_length=1,
            description="judge score bands over [0, 6], as intervals (METHODS §3(h)3)")
        failed_check: Tier | None = Field(default="hard", description="the tier a failed static check "
                                          "forces (null: the check does not decide)")
        passed_check: Tier | None = Field(default=None, description="the tier a passing static check gives "
                                          "(null, METHODS §3(h)3: none; for recipes without a judge view)")
        pass_rate_bands: dict[Tier, str] = Field(
            default_factory=lambda: {"hard": "[0, 0.5)", "medium": "[0.5, 1)", "easy": "[1, 1]"}, min_length=1,
            description="pass-rate bands over [0, 1] for questions whose task has tests")
        combine: Literal["harder", "pass_rate"] = Field(default="harder", description="`harder`: the "
                                                        "hardest verdict wins; `pass_rate`: the pass rate "
                                                        "decides where there is one")
        score: str | None = Field(default="student_score", description="column with the judge's total (null: "
                                  "no judge view)")
        check: str = Field(default="student_check", description="column with the static check outcome")
        pass_rate: str | None = Field(default="pass_rate", description="column with the pass rate (null: "
                                      "no pass-rate view)")

        @model_validator(mode="after")
        def _cover(self) -> "AssignTier.Params":
            check_cover(self.score_bands, 0.0, 6.0, "score")
            check_cover(self.pass_rate_bands, 0.0, 1.0, "pass-rate")
            return self

    @classmethod
    def columns(cls, params: "AssignTier.Params") -> Columns:
        reads = ("{check}",) + (("{score}",) if params.score else ()) + (("{pass_rate}",) if params.pass_rate else ())
        return Columns.of(params, reads=reads, writes=("tier", "tier_evidence"))

    def run(self, frame: pl.DataFrame, ctx: "StageContext") -> StageOutput:
        p = self.params
        rules = Rules.of(p)
        missing = pl.Series([None] * frame.height, dtype=pl.Float64)
        rates = frame[p.pass_rate] if p.pass_rate else missing
        scores = frame[p.score] if p.score else missing
        evidence = [rules.assign(s, c, r) for s, c, r in zip(scores, frame[p.check], rates)]
        marked = frame.with_columns(
            pl.Series("tier", [e["tier"] for e in evidence], dtype=pl.String),
            pl.Series("tier_evidence", [json.dumps(e, sort_keys=True) for e in evidence], dtype=pl.String))
        none = pl.col("tier").is_null()
        return StageOutput(marked.filter(~none), rejections(marked.filter(none), "no_views",
                                                            "no score, failed check or pass rate to tier by"))


@dataclass(frozen=True)
class Rules:
    """The tier rules of one ``tier`` stage, parsed."""

    score: dict[str, Band]
    pass_rate: dict[str, Band]
    failed_check: str | None
    passed_check: str | None
    combine: str

    @classmethod
    def of(cls, params: "AssignTier.Params") -> "Rules":
        return cls(check_cover(params.score_bands, 0.0, 6.0, "score"),
                   check_cover(params.pass_rate_bands, 0.0, 1.0, "pass-rate"), params.failed_check,
                   params.passed_check, params.combine)

    def assign(self, score: float | None, check: str | None, rate: float | None) -> dict[str, Any]:
        """A question's tier and the evidence for it, from its stored views alone."""
        by_score, by_rate = band_of(self.score, score), band_of(self.pass_rate, rate)
        by_check = self.failed_check if check == "fail" else self.passed_check if check == "pass" else None
        views = harder(by_score, by_check)
        tier = (by_rate or views) if self.combine == "pass_rate" else harder(views, by_rate)
        return {"score": score, "check": check, "pass_rate": rate, "by_score": by_score, "by_check": by_check,
                "by_pass_rate": by_rate, "tier": tier}


assert set(TIERS) == set(_HARDNESS)
