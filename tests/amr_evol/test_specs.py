"""Reading a modular decomposition: good specs, a partial answer (some specs unreadable), garbage."""

from __future__ import annotations

from compiler.methods.amr_evol.specs import BadSpec, parse_specs, specs_text

GOOD = '''Here are the modules.

```python
def is_palindrome(word: str) -> bool:
    """
    Description: Check whether a word reads the same forwards and backwards.
    Parameters:
    - word (str): the word to check.
    Returns:
    - bool: True when it is a palindrome.
    """

def sort_by_length(words: list[str],
                   descending: bool = True) -> list[str]:
    """Order words by their length.

    Args:
        words: the words to order.
    """
```'''


def test_good_specs_carry_name_typed_signature_description_params_returns():
    specs, bad = parse_specs(GOOD)
    assert bad == [] and [s.name for s in specs] == ["is_palindrome", "sort_by_length"]
    first, second = specs
    assert first.signature == "def is_palindrome(word: str) -> bool:"
    assert first.description == "Check whether a word reads the same forwards and backwards."
    assert first.params == {"word": "str: the word to check."}
    assert first.returns == "bool: True when it is a palindrome."
    assert second.signature == "def sort_by_length(words: list[str], descending: bool = True) -> list[str]:"
    assert second.params == {"words": "list[str]: the words to order.", "descending": "bool"}
    assert second.returns == "list[str]" and second.description == "Order words by their length."
    assert first.text() == first.signature + "\n" + first.description
    assert "def sort_by_length(" in specs_text([s.to_dict() for s in specs])


def test_partial_answer_keeps_the_readable_specs_and_names_the_others():
    text = GOOD[: GOOD.rindex("```")] + '''
def broken(a: int, b -> int:
    """Description: not Python."""

def unclosed(a: int,
    """Description: never closed."""

def no_description(x: int) -> int:
    pass

def is_palindrome(w: str) -> bool:
    """Description: a second spec of the same name."""
```'''
    specs, bad = parse_specs(text)
    assert [s.name for s in specs] == ["is_palindrome", "sort_by_length"]
    assert specs[0].description.startswith("Check whether")         # the first of a name wins
    assert [(b.first_line, b.reason.split(" (")[0]) for b in bad] == [
        ("def broken(a: int, b -> int:", "the signature does not parse"),
        ("def unclosed(a: int,", "the signature is not closed by a colon"),
        ("def no_description(x: int) -> int:", "no description under the signature")]
    assert all(isinstance(b, BadSpec) for b in bad)


def test_garbage_gives_no_specs_and_no_silent_success():
    for text in ("", "I cannot decompose this solution.", "```python\nx = 1\n```", "def"):
        specs, bad = parse_specs(text)
        assert specs == []
    specs, bad = parse_specs("def f(:\n    pass")
    assert specs == [] and len(bad) == 1


def test_comment_style_specs_without_a_fence():
    specs, bad = parse_specs("def total(xs: list[int]) -> int:\n    # Description: Sum the numbers.\n"
                             "    # Returns: int, the sum\n")
    assert bad == [] and specs[0].description == "Sum the numbers." and specs[0].returns == "int, the sum"
