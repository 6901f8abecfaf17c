"""A scripted AMR-Evol teacher for the loopback server, and the small world it answers about: three
seed tasks, a planted module library, and answers chosen so that every path of the pipeline is taken
(a spec that does not parse, an answer with no specs, a copied module that is not novel, a function
that is not isolated, one whose tests fail, and one genuinely new, verified function)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

SEEDS = [
    {"task_id": "seed/vowels", "instruction": "Return the number of vowels in a word.",
     "entry_point": "count", "reference_solution": "def count(w):\n    return sum(c in 'aeiou' for c in w)\n"},
    {"task_id": "seed/words", "instruction": "Split a sentence into its words.",
     "entry_point": "words", "reference_solution": "def words(s):\n    return s.split()\n"},
    {"task_id": "seed/upper", "instruction": "Make every letter of a string upper case.",
     "entry_point": "up", "reference_solution": "def up(s):\n    return s.upper()\n"},
]

PLANTED = [
    ("count_vowels", "def count_vowels(text: str) -> int:\n    \"\"\"Count the vowels in a string.\"\"\"\n"
     "    return sum(ch in 'aeiouAEIOU' for ch in text)\n", ["assert count_vowels('hello') == 2"]),
    ("is_palindrome", "def is_palindrome(word: str) -> bool:\n    \"\"\"Check whether a word reads the same both ways.\"\"\"\n"
     "    return word == word[::-1]\n", ["assert is_palindrome('level')"]),
    ("celsius_to_fahrenheit", "def celsius_to_fahrenheit(c: float) -> float:\n    \"\"\"Convert Celsius to Fahrenheit.\"\"\"\n"
     "    return c * 9 / 5 + 32\n", ["assert celsius_to_fahrenheit(100) == 212"]),
    ("merge_dicts", "def merge_dicts(a: dict, b: dict) -> dict:\n    \"\"\"Merge two dictionaries.\"\"\"\n"
     "    return {**a, **b}\n", ["assert merge_dicts({'a': 1}, {'b': 2}) == {'a': 1, 'b': 2}"]),
    ("binary_search", "def binary_search(xs: list, x) -> int:\n    \"\"\"Find x in a sorted list by bisection, -1 when absent.\"\"\"\n"
     "    import bisect\n    i = bisect.bisect_left(xs, x)\n    return i if i < len(xs) and xs[i] == x else -1\n",
     ["assert binary_search([1, 3, 5], 3) == 1"]),
    ("circle_area", "def circle_area(r: float) -> float:\n    \"\"\"Area of a circle of radius r.\"\"\"\n"
     "    return 3.141592653589793 * r * r\n", ["assert round(circle_area(1), 2) == 3.14"]),
]

DIRECT = "```python\ndef solve(sentence):\n    return [sum(c in 'aeiou' for c in w) for w in sentence.split()]\n```"
SPECS = '''```python
def count_vowels_in_word(word: str) -> int:
    """
    Description: Count the vowels in a string.
    Parameters:
    - word (str): the word.
    Returns:
    - int: how many vowels it has.
    """

def split_words(sentence: str) -> list[str]:
    """Description: Split a sentence into its words."""

def broken(a: int, b -> int:
    """Description: not Python."""
```'''
EVOLVED = '''Here is a refined solution.

```python
LIMIT = 3

def count_vowels(text: str) -> int:
    """Count the vowels in a string."""
    return sum(ch in 'aeiouAEIOU' for ch in text)


def title_case_words(sentence: str) -> list[str]:
    """Upper-case the first letter of every word of a sentence."""
    return [w[:1].upper() + w[1:] for w in sentence.split()]


def double_all(xs: list[int]) -> list[int]:
    """Double every number of a list."""
    return [2 * x for x in xs]


def first_words(sentence: str) -> list[str]:
    """The first few words of a sentence."""
    return sentence.split()[:LIMIT]


def shout(s: str) -> str:
    """End a message with an exclamation mark."""
    return s + "!"


def solve(sentence: str) -> list[int]:
    return [count_vowels(w) for w in sentence.split()]
```'''
MODULE_TESTS = {
    "title_case_words": "```python\nassert title_case_words('a b') == ['A', 'B']\nassert title_case_words('') == []\n"
                        "assert title_case_words('hi there') == ['Hi', 'There']\n```",
    "double_all": "```python\nassert double_all([1]) == [3]\nassert double_all([]) == []\nassert double_all([0]) == [0]\n```",
    "shout": "```python\nassert shout('hi') == 'hi!'\n```",   # one assert: too few
}


def write_world(tmp: Path) -> tuple[Path, Path]:
    """The seed task file and the planted module library."""
    tasks, library = tmp / "seeds.jsonl", tmp / "library.jsonl"
    tasks.write_text("".join(json.dumps(t) + "\n" for t in SEEDS))
    library.write_text("".join(json.dumps({"name": n, "code": c, "tests": t}) + "\n" for n, c, t in PLANTED))
    return tasks, library


class Teacher:
    """Answers each AMR-Evol prompt by its shape; remembers every request body."""

    def __init__(self):
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, body: dict[str, Any]) -> str:
        self.bodies.append(body)
        user = body["messages"][-1]["content"]
        if user.rstrip().endswith("New task:"):
            shown = re.search(r"Task 1: (.*)", user).group(1)
            return f"New task: For every word of a sentence, do this: {shown.lower()}"
        if user.rstrip().endswith("Harder question:"):
            question = user.split("Question:\n", 1)[1].rsplit("\n\nHarder question:", 1)[0]
            return f"{question} Ignore upper and lower case."
        if user.rstrip().endswith("RESPONSE:"):
            return "I cannot break this down." if "upper case" in user else SPECS
        if user.rstrip().endswith("Correct Solution:"):
            return EVOLVED
        if "assert statements that test the Python function below" in user:
            name = re.search(r"^def (\w+)\(", user, re.M).group(1)
            return MODULE_TESTS.get(name, "no idea")
        return DIRECT

    def requests_ending(self, tail: str) -> list[dict[str, Any]]:
        return [b for b in self.bodies if b["messages"][-1]["content"].rstrip().endswith(tail)]
