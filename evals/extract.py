"""Code out of a chat model's answer, for evaluation.

Instruct models wrap code in fences, or write it bare between prose, and like to add example usage
(``print(f(1))``) and explanations. :func:`function_code` finds the code that defines the entry
point: a fenced Python block, else the code-looking lines of the whole answer; then
:func:`sanitize` keeps only the definitions (imports, functions, classes, assignments), so demo
calls at the top level neither run nor break the program. Code that does not parse is returned as
written, so the sandbox reports the model's own syntax error.

(The compiler has its own, richer extraction for teacher answers; ``evals`` does not import it.)
"""

from __future__ import annotations

import ast
import re

from evals import codeinfo

_FENCE_LINE = re.compile(r"^[ \t]*```")
_FENCE = re.compile(r"^[ \t]*```[ \t]*([\w+.-]*)[^\n]*\n(.*?)(?:^[ \t]*```[ \t]*$|\Z)", re.S | re.M)
_PYTHON_TAGS = {"", "python", "py", "python3"}
_CODE_STARTS = ("def ", "async def ", "class ", "import ", "from ", "@")
_DEFINITIONS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef,
                ast.Assign, ast.AnnAssign)


def fenced_code(text: str, entry_point: str | None) -> str | None:
    """The Python block of a fenced answer: the last one defining ``entry_point``, else the last
    Python block; an unterminated final fence counts. None when there is no fence."""
    blocks = [m.group(2) for m in _FENCE.finditer(text) if m.group(1).lower() in _PYTHON_TAGS]
    blocks = [b for b in blocks if b.strip()]
    if not blocks:
        return None
    defining = [b for b in blocks if entry_point and entry_point in codeinfo.defined_functions(b)]
    return (defining or blocks)[-1].rstrip() + "\n"


def code_lines(text: str) -> str:
    """The code-looking lines of ``text``: ``def``/``class``/import/decorator lines and indented
    lines (with the blank lines between them); prose, fences and top-level calls are dropped."""
    kept: list[str] = []
    for line in text.split("\n"):
        if _FENCE_LINE.match(line):
            continue
        if line.startswith(_CODE_STARTS) or (line[:1] in (" ", "\t") and line.strip() and kept):
            kept.append(line)
        elif not line.strip() and kept:
            kept.append("")
    return "\n".join(kept).strip("\n") + "\n" if kept else ""


def sanitize(code: str) -> str:
    """Only the top-level definitions of ``code`` (imports, functions with their decorators,
    classes, assignments), in order; ``code`` unchanged when it does not parse."""
    tree = codeinfo.parse(code)
    if tree is None:
        return code
    lines = code.split("\n")
    parts = []
    for node in tree.body:
        if isinstance(node, _DEFINITIONS):
            first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            parts.append("\n".join(lines[first - 1:node.end_lineno]))
    return "\n\n".join(parts).rstrip() + "\n" if parts else code


def function_code(text: str, entry_point: str) -> str | None:
    """The code of an answer that defines ``entry_point`` itself, sanitized; code that mentions
    ``def entry_point(`` but does not parse comes back as written; None when neither is found."""
    candidates = [c for c in (fenced_code(text, entry_point), code_lines(text)) if c]
    for candidate in candidates:
        if entry_point in codeinfo.defined_functions(candidate):
            return sanitize(candidate)
    return next((c for c in candidates if f"def {entry_point}(" in c), None)


__all__ = ["code_lines", "fenced_code", "function_code", "sanitize"]
