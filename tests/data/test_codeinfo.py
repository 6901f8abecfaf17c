"""Reading entry points, signatures and docstring examples out of code."""

from __future__ import annotations

import pytest

from evals.codeinfo import (docstring_examples, find_entry_point, function_docstring, function_header,
                            split_at_header, top_level_imports)

TRICKY = '''import re
from typing import Dict

def helper(x): return x

def permutations(string, step = 0, sep: str = ":", f=lambda a: a,
                 table: Dict[str, int] = {"a:b": 1}) -> Dict[str,
                                                          int]:  # returns: a dict
    """Doc: with a colon."""
    return {sep: step}
'''


def test_header_spans_a_multiline_signature_with_colons_in_defaults():
    header = function_header(TRICKY, "permutations")
    assert header.startswith("def permutations(string, step = 0, sep: str = \":\"")
    assert header.endswith("-> Dict[str,\n                                                          int]:")
    assert header.count("\n") == 2
    assert "returns" not in header and "Doc" not in header


def test_split_at_header_round_trips_and_body_starts_after_the_colon():
    before, header, body = split_at_header(TRICKY, "permutations")
    assert before + header + body == TRICKY
    assert before.endswith("def helper(x): return x\n\n")
    assert body.lstrip().startswith("# returns: a dict")


@pytest.mark.parametrize("code,name,expected", [
    ("def f(x): return x\n", "f", "def f(x):"),
    ("async def g(a, b=(1, 2)):\n    pass\n", "g", "async def g(a, b=(1, 2)):"),
    ("def h(s: str = 'a:b') -> 'x:y' :\n  pass\n", "h", "def h(s: str = 'a:b') -> 'x:y' :"),
    ("class C:\n    def f(self): pass\n", "f", None),
    ("def f(x):\n  return (\n", "f", "def f(x):"),   # body does not parse: found by tokens
    ("", "f", None),
])
def test_header_cases(code, name, expected):
    assert function_header(code, name) == expected


def test_entry_point_prefers_the_function_the_first_test_calls():
    code = "def helper(x):\n    return x\n\ndef main_fn(a):\n    return helper(a)\n"
    assert find_entry_point(code, ["assert set(main_fn([1])) == set([1])"]) == "main_fn"
    assert find_entry_point(code, []) == "helper"


def test_entry_point_from_tests_when_the_reference_does_not_parse():
    assert find_entry_point("def broken(:\n", ["assert sorted(solve(3)) == [1]"]) == "solve"
    assert find_entry_point(None, []) is None


def test_imports_and_docstring():
    assert top_level_imports(TRICKY) == "import re\nfrom typing import Dict"
    assert function_docstring(TRICKY, "permutations") == "Doc: with a colon."


def test_doctest_examples_become_asserts():
    doc = """Something.
    >>> add(1, 2)  # small
    3
    >>> add(
    ...   'a', 'b')
    'ab'
    >>> add(1, 1) == 2
    >>> other(3)
    4
    >>> add(x, 1)
    5
    >>> add(1, 0)
    Traceback (most recent call last):
    """
    assert docstring_examples(doc, "add") == [
        "assert add(1, 2) == 3", "assert add('a', 'b') == 'ab'", "assert add(1, 1) == 2"]


def test_prose_examples_are_used_when_there_is_no_doctest():
    doc = """Examples:
    digits("ab") => 0
    digits("a1b2") ==> 2
    digits("x") -> 1 - 1 = 0
    digits(word) => 3
    """
    assert docstring_examples(doc, "digits") == [
        "assert digits('ab') == 0", "assert digits('a1b2') == 2", "assert digits('x') == 0"]
