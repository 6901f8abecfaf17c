"""Code extraction from model text and ast-based header/body splitting."""

from __future__ import annotations

from compiler.codeparse import extract_code, split_function, strip_main_guard

ANSWER = """Here is the solution:

```python
def add(a, b):
    return a + b
```

Usage:

```python
print(add(1, 2))
```
"""


def test_auto_picks_the_block_defining_the_entry_point():
    assert extract_code(ANSWER, entry_point="add") == "def add(a, b):\n    return a + b\n"
    assert extract_code(ANSWER, how="last") == "print(add(1, 2))\n"
    assert extract_code(ANSWER, how="first") == "def add(a, b):\n    return a + b\n"


def test_unfenced_code_and_prose():
    assert extract_code("def f(x):\n    return x\n") == "def f(x):\n    return x\n"
    prose = "I think you should write\ndef f(x):\n    return x * 2\nand that is it."
    assert extract_code(prose) == "def f(x):\n    return x * 2\n"
    assert extract_code("no code here at all") is None


def test_truncated_fence_still_yields_code():
    assert extract_code("```python\ndef f():\n    return 1\n") == "def f():\n    return 1\n"


def test_split_with_colons_in_defaults_and_multiline_signature():
    code = 'import re\n\ndef f(a, sep=":", d={"k": 1},\n      e: int = 2) -> str:\n    """doc: yes"""\n    return sep\n'
    parts = split_function(code, "f")
    assert parts.prefix == "import re\n\n"
    assert parts.header == 'def f(a, sep=":", d={"k": 1},\n      e: int = 2) -> str:\n'
    assert parts.body == '    """doc: yes"""\n    return sep\n'


def test_split_refuses_one_line_functions_and_syntax_errors():
    assert split_function("def f(x): return x\n") is None
    assert split_function("def f(x)\n    return x\n") is None


def test_strip_main_guard():
    code = "def f():\n    return 1\n\nif __name__ == '__main__':\n    print(input())\n"
    assert strip_main_guard(code) == "def f():\n    return 1\n"
