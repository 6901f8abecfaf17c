"""Getting code out of model text, and taking code apart with ``ast``.

Used by ``extract_code`` (teacher answers), PERsD's refinement parser and the evaluator's prompts.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from evals import codeinfo
from evals.codeinfo import defined_functions

_FENCE = re.compile(r"^[ \t]*(```+|~~~+)[ \t]*([\w+#.-]*)[^\n]*\n(.*?)^[ \t]*\1[ \t]*$", re.S | re.M)
_OPEN_FENCE = re.compile(r"^[ \t]*```+[ \t]*([\w+#.-]*)[^\n]*\n(.*)\Z", re.S | re.M)
_PY_LANGS = {"", "python", "py", "python3", "py3"}


@dataclass(frozen=True)
class Block:
    lang: str
    code: str


def fenced_blocks(text: str, *, python_only: bool = True) -> list[Block]:
    """Fenced code blocks in order. An unterminated last fence (a truncated answer) counts too."""
    blocks = [Block(m.group(2).lower(), m.group(3)) for m in _FENCE.finditer(text)]
    if not blocks:
        m = _OPEN_FENCE.search(text)
        if m:
            blocks = [Block(m.group(1).lower(), m.group(2))]
    if python_only:
        blocks = [b for b in blocks if b.lang in _PY_LANGS]
    return [Block(b.lang, b.code.rstrip() + "\n") for b in blocks if b.code.strip()]


def parses(code: str) -> bool:
    return codeinfo.parse(code) is not None


def defines(code: str, name: str) -> bool:
    """Whether ``code`` defines the top-level function ``name``."""
    return name in defined_functions(code)


def code_lines_fallback(text: str) -> str:
    """Without fences: keep ``def``/``class``/``import``/``from``/``@`` lines and indented lines
    (PERsD's fallback), dropping prose."""
    keep = []
    for line in text.splitlines():
        if line.startswith((" ", "\t", "def ", "class ", "import ", "from ", "@", "async def ")):
            keep.append(line)
        elif not line.strip() and keep:
            keep.append(line)
    return "\n".join(keep).strip("\n") + ("\n" if keep else "")


def pick_block(blocks: list[Block], entry_point: str | None, how: str) -> str | None:
    """Choose one block: ``first``, ``last``, ``longest``, ``all`` (joined), or ``auto`` (the last
    block defining the entry point, else the longest block defining a function, else the last)."""
    if not blocks:
        return None
    if how == "first":
        return blocks[0].code
    if how == "last":
        return blocks[-1].code
    if how == "longest":
        return max(blocks, key=lambda b: len(b.code)).code
    if how == "all":
        return "\n\n".join(b.code.rstrip() for b in blocks) + "\n"
    if entry_point:
        with_entry = [b for b in blocks if defines(b.code, entry_point)]
        if with_entry:
            return with_entry[-1].code
    with_def = [b for b in blocks if defined_functions(b.code)]
    if with_def:
        return max(with_def, key=lambda b: len(b.code)).code
    return blocks[-1].code


def extract_code(text: str, *, entry_point: str | None = None, how: str = "auto") -> str | None:
    """The code in a model answer: a fenced block, else the whole text if it parses and defines a
    function, else the code-looking lines; None when nothing is left."""
    code = pick_block(fenced_blocks(text), entry_point, how)
    if code is None:
        stripped = text.strip("\n")
        if stripped and parses(stripped) and defined_functions(stripped):
            code = stripped + "\n"
        else:
            code = code_lines_fallback(text) or None
    return code


def strip_main_guard(code: str) -> str:
    """Drop top-level ``if __name__ == "__main__":`` blocks (demo code that may read stdin)."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return code
    lines = code.splitlines(keepends=True)
    for node in reversed(tree.body):
        if isinstance(node, ast.If) and _is_main_guard(node.test):
            del lines[node.lineno - 1:node.end_lineno]
    return "".join(lines).rstrip() + "\n"


def _is_main_guard(test: ast.expr) -> bool:
    return (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == "__name__"
            and len(test.comparators) == 1 and isinstance(test.comparators[0], ast.Constant)
            and test.comparators[0].value == "__main__")


@dataclass(frozen=True)
class FunctionParts:
    prefix: str   # everything before the signature (imports, helpers, decorators)
    header: str   # the full signature up to and including its colon, then the newline
    body: str     # the indented body (docstring included), ending with a newline
    suffix: str   # everything after the function


def split_function(code: str, name: str | None = None) -> FunctionParts | None:
    """Split ``code`` around the top-level function ``name`` (default: the first one). The header
    comes from :func:`evals.codeinfo.split_at_header` (so defaults containing ``:`` and multi-line
    signatures are safe); the body ends where ``ast`` says the function ends."""
    tree = codeinfo.parse(code)
    if tree is None:
        return None
    funcs = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    func = next((f for f in funcs if name is None or f.name == name), None)
    split = codeinfo.split_at_header(code, func.name) if func is not None else None
    if split is None:
        return None
    before, header, rest = split
    first_line, newline, after = rest.partition("\n")
    if first_line.strip() and not first_line.strip().startswith("#"):
        return None  # "def f(x): return x": no separate body lines
    lines = code.splitlines(keepends=True)
    body_end = sum(len(l) for l in lines[:func.end_lineno])
    body = code[len(before) + len(header) + len(first_line) + len(newline):body_end]
    return FunctionParts(before, header + first_line + newline, body if body.endswith("\n") else body + "\n",
                         code[body_end:])
