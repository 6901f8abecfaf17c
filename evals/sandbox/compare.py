"""Parent-side comparisons and feedback text.

- :func:`persd_equal` is PERsD's rule for input/output tests: approximate float equality when
  both sides parse as floats (``pytest.approx`` defaults: relative 1e-6, absolute 1e-12);
  otherwise equality after ``ast.literal_eval`` of both sides, falling back to string equality
  when either side does not parse or the literals differ.
- :func:`evalplus_equal` is EvalPlus's rule: exact equality, else ``numpy.allclose``-style
  closeness (rtol 1e-7, ``atol``; ``atol`` defaults to 1e-6 when the expected value is made of
  floats) for numbers and sequences of numbers. Lists and tuples compare alike, since plain JSON
  expected values cannot tell them apart.
- :func:`feedback` renders PERsD's error text.
"""

from __future__ import annotations

import ast
import math
import re

TRIM_TOKENS = 50
_TOKEN_RE = re.compile(r"\s*\S+")


def trim(text: str, tokens: int = TRIM_TOKENS) -> str:
    """``text`` cut after its first ``tokens`` whitespace-separated tokens (unchanged if shorter)."""
    end = 0
    for count, match in enumerate(_TOKEN_RE.finditer(text), start=1):
        end = match.end()
        if count == tokens:
            return text[:end]
    return text


def _as_float(text: str) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def approx_equal(actual: float, expected: float, rel: float = 1e-6, abs_: float = 1e-12) -> bool:
    """``actual == pytest.approx(expected)`` with pytest's default tolerances."""
    if actual == expected:
        return True
    if math.isinf(actual) or math.isinf(expected) or math.isnan(actual) or math.isnan(expected):
        return False
    return abs(actual - expected) <= max(rel * abs(expected), abs_)


def persd_equal(output: str, expected: str) -> bool:
    """PERsD's comparison of an output text with an expected text."""
    out_f, exp_f = _as_float(output), _as_float(expected)
    if out_f is not None and exp_f is not None:
        return approx_equal(out_f, exp_f)
    try:
        if ast.literal_eval(output) == ast.literal_eval(expected):
            return True
    except Exception:                           # noqa: BLE001 - any parse failure falls through
        pass
    return output == expected


def persd_input(call: str) -> str:
    """The INPUT shown in feedback: the argument list of the call, as PERsD cuts it."""
    call = call.strip()
    start, end = call.find("("), call.rfind(")")
    return call[start:end + 1] if start >= 0 and end >= start else call


def feedback(failure: dict) -> str:
    """PERsD's error text for a first failure: ``AssertionError`` with INPUT/OUTPUT/EXPECTED
    (each cut to 50 tokens) for a wrong output, ``"<ErrorType> : <message>"`` otherwise."""
    if {"input", "output", "expected"} <= failure.keys():
        return (f"AssertionError\nINPUT: {trim(str(failure['input']))}"
                f"\nOUTPUT: {trim(str(failure['output']))}\nEXPECTED: {trim(str(failure['expected']))}")
    return f"{failure.get('error_type', 'Error')} : {failure.get('message', '')}"


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _floats(value) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, (list, tuple)):
        return bool(value) and all(isinstance(v, float) for v in value)
    return False


def _close(a, b, atol: float, rtol: float) -> bool:
    if _is_number(a) and _is_number(b):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b or abs(a - b) <= atol + rtol * abs(b)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_close(x, y, atol, rtol) for x, y in zip(a, b))
    return _same(a, b)


def _same(a, b) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    try:
        return bool(a == b)
    except Exception:                           # noqa: BLE001
        return False


def evalplus_equal(actual, expected, atol: float = 0.0) -> bool:
    """EvalPlus's comparison of a decoded output with a decoded expected value."""
    if _same(actual, expected):
        return True
    if atol == 0 and _floats(expected):
        atol = 1e-6
    return atol != 0 and _close(actual, expected, atol, 1e-7)
