"""AMR-Evol's prompts (METHODS §2(c)), in our own words with the structure the paper prescribes: every
teacher prompt is a system part with one worked example and a user part with the new case.

``{name}`` fields are filled with ``str.format``; literal braces in examples are doubled.
"""

from __future__ import annotations

FENCE_RULE = "Write the whole answer in Markdown and put the Python code in a ```python block."

# -- A0: instructions ---------------------------------------------------------------------------

SELF_INSTRUCT_SYSTEM = "You write programming tasks that are used to teach a Python coding assistant."
SELF_INSTRUCT = """\
Here are some programming tasks:

{examples}

Write one new task. It must differ from the tasks above, be solvable with a self-contained Python \
program or function, and be about as hard. State it clearly in a few sentences, with any inputs and \
outputs it needs. Write only the task, nothing else.

New task:"""

EVOL_METHODS = {
    "constraints": "Add one or two new constraints or requirements to the question (about ten more words).",
    "uncommon": "Replace a common requirement of the question with a less common and more specific one.",
    "reasoning": "If the question can be solved in only a few logical steps, make it need more reasoning steps.",
    "misdirection": "Include a short piece of erroneous code as a reference, to make the question more misleading.",
    "complexity": "Ask for a stricter time or space complexity than the plain solution has (do not overdo it).",
}
EVOL = """\
Make the programming question below somewhat harder. Use this method:
{method}

Keep the question self-contained and solvable in Python. Write only the new question.

Question:
{instruction}

Harder question:"""

# -- A1 baselines: chain of thought ----------------------------------------------------------------

COT_SYSTEM = """\
You are a professional Python programmer. Think through the question step by step, then give the \
final solution. """ + FENCE_RULE + """

Example
Python Question:
Return the second smallest distinct number of a list, or None when there is none.

Answer:
Step 1: the distinct values are what matter, so take the set of the list.
Step 2: with fewer than two distinct values there is no answer: return None.
Step 3: otherwise sort them and take the second.

```python
def second_smallest(numbers):
    values = sorted(set(numbers))
    return values[1] if len(values) > 1 else None
```"""
COT_TEMPLATE = "Python Question:\n{instruction}{signature_hint}\n\nAnswer:"

# -- A3: modular decomposition ----------------------------------------------------------------------

DECOMPOSE_SYSTEM = '''\
You are given a Python question and a potential solution. Deconstruct the solution into smaller \
function modules. For each module write its Python signature with type hints, followed by a \
docstring holding a short Description, its Parameters and what it Returns. Write no function bodies. \
Each module must have a specific name and a detailed input/output specification. Do not repeat the \
functions of the example.

Example
Python Question:
Given a list of words, return the words that are palindromes, longest first.

Potential Solution:
```python
def palindromes_longest_first(words):
    found = [w for w in words if w == w[::-1]]
    return sorted(found, key=len, reverse=True)
```

RESPONSE:
```python
def is_palindrome(word: str) -> bool:
    """
    Description: Check whether a word reads the same forwards and backwards.
    Parameters:
    - word (str): the word to check.
    Returns:
    - bool: True when the word is a palindrome.
    """

def sort_by_length_desc(words: list[str]) -> list[str]:
    """
    Description: Order words from the longest to the shortest.
    Parameters:
    - words (list[str]): the words to order.
    Returns:
    - list[str]: the words, longest first.
    """
```'''
DECOMPOSE = "New Task:\n\nPython Question:\n{instruction}\n\nPotential Solution:\n{solution}\n\nRESPONSE:"

# -- A5: adaptive response evolution ------------------------------------------------------------------

EVOLVE_SYSTEM = '''\
You are a professional Python programmer. You are given a question and some relevant functions that \
are meant as inspiration. Write a more refined and accurate solution to the question: reuse, adapt \
or ignore the relevant functions as the question needs. Answer as if you had never seen the relevant \
functions: do not mention them. ''' + FENCE_RULE + '''

Example
Python Question:
Count the vowels of every word of a sentence and return the counts in order.

Relevant Functions:
```python
def count_vowels(text: str) -> int:
    """Count the vowels in a string."""
    return sum(ch in "aeiouAEIOU" for ch in text)
```

Correct Solution:
Split the sentence into words and count each word's vowels.

```python
def vowel_counts(sentence: str) -> list[int]:
    def count_vowels(text: str) -> int:
        return sum(ch in "aeiouAEIOU" for ch in text)

    return [count_vowels(word) for word in sentence.split()]
```'''
EVOLVE = "Python Question:\n{instruction}\n\n{specs}Relevant Functions:\n{modules}\n\nCorrect Solution:"
SPECS_SECTION = "Decomposed Functions (the parts a solution needs):\n{specs}\n\n"
NO_MODULES = "(none)"

# -- AnsRepair (baseline) and the self-test gate ------------------------------------------------------

TESTS_SYSTEM = """\
Given a Python question and a possible solution, write a test function `test_solution()` that checks \
the solution with assert statements on typical and edge cases. """ + FENCE_RULE + """

Example
Question:
Return the absolute difference of two numbers.

Solution:
```python
def abs_diff(a, b):
    return abs(a - b)
```

Test:
```python
def test_solution():
    assert abs_diff(3, 5) == 2
    assert abs_diff(5, 3) == 2
    assert abs_diff(-1, -1) == 0
```"""
TESTS = "Question:\n{instruction}\n\nSolution:\n```python\n{code}```\n\nTest:"

REPAIR_SYSTEM = """\
Given a Python question and a wrong solution, give the correct solution. """ + FENCE_RULE + """

Example
Question:
Return the largest element of a non-empty list.

Wrong Solution:
```python
def largest(xs):
    return sorted(xs)[0]
```

Correct Solution:
```python
def largest(xs):
    return max(xs)
```"""
REPAIR = "Question:\n{instruction}\n\nWrong Solution:\n```python\n{code}```\n\nCorrect Solution:"

# -- A2/A6: the module database ------------------------------------------------------------------------

SEED_MODULES = """\
Write {functions} diverse, self-contained Python functions that would be useful building blocks for \
tasks like the one below (not a solution of the task itself). Give each a descriptive name, type \
hints and a docstring, and follow it with at least {tests} assert statements that test it. Put each \
function with its asserts in its own ```python block. Use only the standard library.

Task:
{instruction}"""

MODULE_TESTS = """\
Write {tests} assert statements that test the Python function below on typical and edge cases. Call \
only the function itself. Put the asserts in one ```python block.

```python
{code}```"""
