"""PERsD's comparison rule and feedback text, EvalPlus's comparison, and the value encoding
(parent-side pure functions)."""

from __future__ import annotations

import math

import pytest

from evals.sandbox import compare
from evals.sandbox.inside import encode


@pytest.mark.parametrize("output, expected, equal", [
    ("0.30000000000000004", "0.3", True),       # floats: approximate
    ("1", "1.0", True),
    ("0.3001", "0.3", False),
    ("nan", "nan", False),                      # pytest.approx: nan is not equal to nan
    ("inf", "inf", True),
    ("[1, 2]", "[1,2]", True),                  # literal_eval equality
    ("{1, 2}", "{2, 1}", True),
    ("(1, 2)", "[1, 2]", False),
    ("True", "True", True),
    ("even", "even", True),                     # neither parses: string equality
    ("even", "Even", False),
    ("[1, 2", "[1, 2", True),                   # unparsable but identical strings
    ("'a'", "a", False),
])
def test_persd_equal(output, expected, equal):
    assert compare.persd_equal(output, expected) is equal


def test_trim_keeps_short_text_and_cuts_after_fifty_tokens():
    assert compare.trim("a  b\nc") == "a  b\nc"
    words = " ".join(str(i) for i in range(80))
    cut = compare.trim(words)
    assert cut.split() == [str(i) for i in range(50)]
    assert words.startswith(cut)
    assert compare.trim("\n".join(str(i) for i in range(60))).split() == [str(i) for i in range(50)]


def test_feedback_formats():
    long = " ".join(["x"] * 70)
    text = compare.feedback({"input": "(1, 2)", "output": long, "expected": "3"})
    assert text == "AssertionError\nINPUT: (1, 2)\nOUTPUT: " + " ".join(["x"] * 50) + "\nEXPECTED: 3"
    assert compare.feedback({"error_type": "ZeroDivisionError", "message": "division by zero"}) == \
        "ZeroDivisionError : division by zero"


def test_persd_input_is_the_argument_list():
    assert compare.persd_input(" add(1, (2, 3)) ") == "(1, (2, 3))"
    assert compare.persd_input("no_call") == "no_call"


@pytest.mark.parametrize("actual, expected, atol, equal", [
    (1, 1, 0, True),
    ([1, 2], [1, 2], 0, True),
    ((1, 2), [1, 2], 0, True),                  # plain-JSON expected values cannot say tuple
    (0.1 + 0.2, 0.3, 0, True),                  # floats get atol 1e-6 by default
    ([0.1 + 0.2, 1.0], [0.3, 1.0], 0, True),
    (0.31, 0.3, 0, False),
    (0.31, 0.3, 0.05, True),
    (3.0000001, 3, 0, False),                   # expected not a float: exact
    ("a", "b", 0, False),
    ({"a": [1]}, {"a": [1]}, 0, True),
    (float("nan"), float("nan"), 1e-6, True),
    (encode.Opaque("A", "A()"), encode.Opaque("A", "A()"), 0, False),
])
def test_evalplus_equal(actual, expected, atol, equal):
    assert compare.evalplus_equal(actual, expected, atol) is equal


@pytest.mark.parametrize("value", [
    None, True, 3, -2**70, 1.5, "s", [1, [2]], (1, (2, "x")), {1, 2}, frozenset({"a"}),
    {(1, 2): [3], "k": {"n": None}}, b"\x00\xff", complex(1, -2), float("inf"),
])
def test_encode_round_trip(value):
    assert encode.decode(encode.encode(value)) == value


def test_encode_nan_and_foreign_objects():
    assert math.isnan(encode.decode(encode.encode(float("nan"))))

    class Weird:
        def __eq__(self, other):
            return True

        def __repr__(self):
            return "Weird()"

    decoded = encode.decode(encode.encode([Weird()]))
    assert isinstance(decoded[0], encode.Opaque) and repr(decoded[0]) == "Weird()"
    assert decoded[0] != decoded[0]


def test_encode_numpy_values():
    numpy = pytest.importorskip("numpy")
    assert encode.decode(encode.encode(numpy.int64(7))) == 7
    assert encode.decode(encode.encode(numpy.array([[1.5, 2.0]]))) == [[1.5, 2.0]]
