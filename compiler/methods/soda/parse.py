"""Reading model text for SODA: the judge's score in either of its two shapes, the error types a
judge names, and the new instruction after ``#Created Instruction#:``.

The judge's two shapes (METHODS §3(i)):

- ``rules``: ``Score:`` then ``Rule 1. Basic Functionality: 2`` … ``Rule 5. Coding Practices: 0.5``
  (the text before, ``Code Analysis: …``, may mention rules too, so only what follows the last
  ``Score:`` is read when there is one, and the last line of each rule counts). All five rules must be
  there, each between 0 and its maximum (2, 1, 1, 1, 1); half points are kept; the total is their exact
  sum.
- ``json``: an object with a numeric ``score`` between 0 and 6 (and usually a ``justification``),
  alone or in a fenced block; it carries no rule scores.

Anything else — a rule missing, a score out of range, a bare ``Score: 4`` — is not a judgement:
:func:`parse_judgement` raises :class:`Unparsed`, and the stage drops the row with reason
``judge_unparsed`` and the raw text, never a zero.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from compiler.methods.soda.templates import CREATED_MARKER, ERROR_TYPES, RULE_POINTS

Shape = Literal["rules", "json"]

_SCORE_MARKER = re.compile(r"\bscores?\s*:", re.I)
_CREATED = re.compile(r"^[ \t*_]*" + re.escape(CREATED_MARKER), re.M)
_NEXT_MARKER = re.compile(r"^[ \t*_]*#(?:Created|Given) Instruction#", re.M)
_RULE = re.compile(r"rule\s*([1-5])\b[^:\n]*:[\s*_]*([0-9]+(?:\.[0-9]+)?)", re.I)
_TYPE_NAMES = {
    "Syntax Error": re.compile(r"\bsyntax\s*errors?\b", re.I),
    "Logical Error": re.compile(r"\blogic(?:al)?\s*errors?\b", re.I),
    "Type Error": re.compile(r"\btype\s*errors?\b", re.I),
    "Name Error": re.compile(r"\bname\s*errors?\b", re.I),
    "Timeout Error": re.compile(r"\btime-?\s*out\s*errors?\b", re.I),
}
assert set(_TYPE_NAMES) == set(ERROR_TYPES)


class Unparsed(ValueError):
    """The text holds no judgement in either shape; the message says what was wrong."""


@dataclass(frozen=True)
class Judgement:
    total: float
    rules: tuple[float, ...] | None      # the five rule scores (``rules`` shape only)
    shape: Shape


def parse_judgement(text: str) -> Judgement:
    """The judge's total (and rule scores) from its answer in either shape; raises :class:`Unparsed`."""
    rules = _rule_scores(text)
    if rules:
        return _from_rules(rules)
    found = _json_score(text)
    if found is not None:
        return found
    raise Unparsed("neither `Score:` with Rule 1-5 nor a JSON object with a `score`")


def _rule_scores(text: str) -> dict[int, str]:
    """Each rule's last score after the last ``Score:`` marker (the whole text without one)."""
    markers = list(_SCORE_MARKER.finditer(text))
    tail = text[markers[-1].end():] if markers else text
    found = {int(m.group(1)): m.group(2) for m in _RULE.finditer(tail)}
    if not found and markers:       # "Score: Rule 1 ... " on the marker's own line, or rules before it
        found = {int(m.group(1)): m.group(2) for m in _RULE.finditer(text)}
    return found


def _from_rules(found: dict[int, str]) -> Judgement:
    missing = [str(k) for k in range(1, 6) if k not in found]
    if missing:
        raise Unparsed(f"rule{'s' if len(missing) > 1 else ''} {', '.join(missing)} missing")
    values = [Fraction(found[k]) for k in range(1, 6)]
    for k, (value, top) in enumerate(zip(values, RULE_POINTS), start=1):
        if value > Fraction(top):
            raise Unparsed(f"rule {k} scored {found[k]}, above its {top:g} point{'s' if top > 1 else ''}")
    return Judgement(float(sum(values)), tuple(float(v) for v in values), "rules")


def _json_score(text: str) -> Judgement | None:
    """The last JSON object in the text that has a ``score`` (None when there is none)."""
    decoder, found = json.JSONDecoder(), None
    for at in [m.start() for m in re.finditer(r"\{", text)]:
        try:
            data, _ = decoder.raw_decode(text, at)
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict) and "score" in data:
            found = data
    if found is None:
        return None
    score = found["score"]
    try:
        value = Fraction(score.strip()) if isinstance(score, str) else Fraction(str(score))
    except ValueError:
        value = None
    if value is None or isinstance(score, bool) or not isinstance(score, (str, int, float)):
        raise Unparsed(f"JSON score {score!r} is not a number")
    if not 0 <= value <= 6:
        raise Unparsed(f"JSON score {score!r} is outside 0-6")
    return Judgement(float(value), None, "json")


def error_types_named(text: str) -> list[str]:
    """The five error types a judge's answer names (after ``Error types:`` when it says so), in the
    taxonomy's order. "Logic error" counts as Logical Error."""
    _, marker, after = text.rpartition("rror types:")
    body = after if marker else text
    return [name for name, pattern in _TYPE_NAMES.items() if pattern.search(body)]


def created_instruction(text: str) -> str | None:
    """The new instruction: what follows the first ``#Created Instruction#:`` that starts a line (the
    prompt asks the answer to start with it), up to a line that starts another marker; None without
    the marker or with nothing after it."""
    found = _CREATED.search(text)
    if found is None:
        return None
    body = _NEXT_MARKER.split(text[found.end():], maxsplit=1)[0]
    body = body.strip().strip("*").strip()
    return body or None
