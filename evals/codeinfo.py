"""What a piece of Python source says about a task: its entry point, the exact `def` signature
(PERsD's prompt suffix), the docstring, and the doctest examples inside it.

Everything here reads code with ``ast`` and ``tokenize`` rather than by splitting strings, because
signatures carry colons in defaults and annotations and span several lines. Both the task loaders
of the compiler and the benchmark loaders of the evaluator use these helpers, so a header means the
same thing at training and at evaluation time.
"""

from __future__ import annotations

import ast
import builtins
import io
import textwrap
import tokenize
import warnings
from typing import Iterable, Sequence

_BUILTINS = frozenset(dir(builtins))
_OPEN, _CLOSE = "([{", ")]}"


def parse(code: str | None) -> ast.Module | None:
    """The module's AST, or None when the code is empty or not valid Python."""
    if not code or not code.strip():
        return None
    with warnings.catch_warnings():  # invalid escapes in benchmark code are not our concern
        warnings.simplefilter("ignore", SyntaxWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            return ast.parse(code)
        except (SyntaxError, ValueError):
            return None


def defined_functions(code: str | None) -> list[str]:
    """Names of the top-level functions ``code`` defines, in order (empty if it doesn't parse)."""
    tree = parse(code)
    if tree is None:
        return []
    return [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def called_names(source: str) -> list[str]:
    """Plain (non-builtin) function names called in ``source``, in source order."""
    tree = parse(source)
    if tree is None:
        return []
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
    calls.sort(key=lambda n: (n.lineno, n.col_offset))
    names = (n.func.id for n in calls)  # type: ignore[attr-defined]
    return list(dict.fromkeys(n for n in names if n not in _BUILTINS))


def find_entry_point(code: str | None, tests: Sequence[str] = ()) -> str | None:
    """The function a task is about.

    The first function called by the tests that the reference defines (PERsD takes the name in the
    first test); without tests, the reference's first top-level function; when the reference does
    not parse, the first function the tests call.
    """
    defined = defined_functions(code)
    for test in tests:
        for name in called_names(test):
            if not defined or name in defined:
                return name
    return defined[0] if defined else None


def _def_offset(code: str, name: str) -> int | None:
    """Character offset of the ``def`` (or ``async def``) of top-level function ``name``."""
    tree = parse(code)
    if tree is not None:
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
                return _offset(code, node.lineno, node.col_offset)
        return None
    return _def_offset_by_tokens(code, name)


def _def_offset_by_tokens(code: str, name: str) -> int | None:
    """Fallback for code that does not parse: the first ``def name`` token pair."""
    prev: tokenize.TokenInfo | None = None
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            if tok.type == tokenize.NAME and tok.string == name and prev is not None \
                    and prev.type == tokenize.NAME and prev.string == "def":
                return _offset(code, *prev.start)
            if tok.type not in (tokenize.NL, tokenize.COMMENT):
                prev = tok
    except (tokenize.TokenError, SyntaxError):
        pass
    return None


def _offset(code: str, lineno: int, col: int) -> int:
    """Character offset of a (1-based line, 0-based column) position. Only used with columns of
    top-level ``def``s (always 0) and with ``tokenize`` columns, which count characters."""
    lines = code.split("\n")
    return sum(len(line) + 1 for line in lines[: lineno - 1]) + col


def _signature_end(code: str, start: int) -> int | None:
    """Offset just past the colon that closes the signature starting at ``start``: the first ``:``
    outside brackets (annotations, defaults and lambdas live inside the parentheses)."""
    depth = 0
    rest = code[start:]
    try:
        for tok in tokenize.generate_tokens(io.StringIO(rest).readline):
            if tok.type != tokenize.OP:
                continue
            depth += (tok.string in _OPEN) - (tok.string in _CLOSE)
            if tok.string == ":" and depth == 0:
                return start + _offset(rest, *tok.end)
    except (tokenize.TokenError, SyntaxError):
        return None
    return None


def function_header(code: str | None, name: str | None) -> str | None:
    """The whole ``def`` signature of top-level function ``name`` up to and including its colon,
    as written (several lines for a multi-line signature); None if it cannot be found."""
    if not code or not name:
        return None
    start = _def_offset(code, name)
    if start is None:
        return None
    end = _signature_end(code, start)
    return code[start:end] if end is not None else None


def split_at_header(code: str, name: str) -> tuple[str, str, str] | None:
    """``(before, header, body)`` of ``code`` around the signature of ``name``; PERsD's completion
    is the body alone because the header ends the prompt."""
    start = _def_offset(code, name)
    end = _signature_end(code, start) if start is not None else None
    if start is None or end is None:
        return None
    return code[:start], code[start:end], code[end:]


def top_level_imports(code: str | None) -> str:
    """The import statements at the top level of ``code``, one per line, as written."""
    tree = parse(code)
    if tree is None or code is None:
        return ""
    nodes = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    return "\n".join(ast.get_source_segment(code, n) or "" for n in nodes)


def function_docstring(code: str | None, name: str | None) -> str | None:
    """The cleaned docstring of top-level function ``name`` in ``code``."""
    tree = parse(code)
    if tree is None or not name:
        return None
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            return ast.get_docstring(node, clean=True)
    return None


# -- doctest examples ----------------------------------------------------------------------------

def docstring_examples(docstring: str | None, entry_point: str) -> list[str]:
    """Assert statements made from the examples of a docstring.

    ``>>> f(x)`` followed by an output line becomes ``assert f(x) == <output>``; a ``>>>`` line
    that is itself a comparison with no output (``>>> f(19) == 'xix'``) becomes ``assert <it>``.
    Prose examples written as ``f(x) ==> y`` / ``=> y`` / ``-> y`` / ``➞ y`` / ``== y`` /
    ``should return y`` become asserts when ``y`` is a Python literal. Examples that don't call
    the entry point, or whose output is not a Python expression (tracebacks, prose), are skipped.
    Comments vanish because both sides go through ``ast``.
    """
    if not docstring:
        return []
    lines = textwrap.dedent(docstring).splitlines()
    asserts = []
    for expr, output in _doctest_pairs(lines):
        stmt = _example_assert(expr, output, entry_point)
        if stmt is not None:
            asserts.append(stmt)
    if not asserts:
        asserts = [a for a in (_arrow_example(line, entry_point) for line in lines) if a]
    return list(dict.fromkeys(asserts))


_ARROWS = ("==>", "=>", "->", "\u279e", "==", "should return", "returns", "return", "=")


def _arrow_example(line: str, entry_point: str) -> str | None:
    """``f(args) <arrow> literal`` on one line → ``assert f(args) == literal``."""
    text = line.strip()
    if not text.startswith(entry_point + "("):
        return None
    end = _call_end(text)
    call = _parse_expr(text[:end]) if end else None
    if call is None or _free_names(call, entry_point):
        return None
    rest = text[end:].strip()
    arrow = next((a for a in _ARROWS if rest.startswith(a)), None)
    if arrow is None:
        return None
    expected = _literal(rest[len(arrow):].strip().rstrip(".,;"))
    return None if expected is None else f"assert {ast.unparse(call)} == {expected}"


def _call_end(text: str) -> int | None:
    """Offset just past the parenthesis closing the first call in ``text``."""
    depth = 0
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.OP and tok.string in _OPEN + _CLOSE:
                depth += 1 if tok.string in _OPEN else -1
                if depth == 0:
                    return _offset(text, *tok.end)
    except (tokenize.TokenError, SyntaxError):
        return None
    return None


def _literal(source: str) -> str | None:
    """``source`` (or what follows its last ``=``, as in ``19 - 5 - 6 = 8``) if it is a literal."""
    for candidate in (source, source.rsplit("=", 1)[-1].strip()):
        expr = _parse_expr(candidate)
        if expr is None:
            continue
        try:
            ast.literal_eval(expr)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            continue
        return ast.unparse(expr)
    return None


def _doctest_pairs(lines: list[str]) -> Iterable[tuple[str, str]]:
    """(source, expected output) pairs; the output is "" when none follows."""
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if not line.startswith(">>>"):
            i += 1
            continue
        source = [line[3:].strip()]
        i += 1
        while i < len(lines) and lines[i].strip().startswith("..."):
            source.append(lines[i].strip()[3:].strip())
            i += 1
        output = []
        while i < len(lines) and lines[i].strip() and not lines[i].strip().startswith(">>>"):
            output.append(lines[i].strip())
            i += 1
        yield " ".join(source), " ".join(output)


def _example_assert(expr_src: str, output: str, entry_point: str) -> str | None:
    expr = _parse_expr(expr_src)
    if expr is None or entry_point not in called_names(expr_src) or _free_names(expr, entry_point):
        return None
    if output:
        expected = _parse_expr(output)
        if expected is None:
            return None
        return f"assert {ast.unparse(expr)} == {ast.unparse(expected)}"
    if isinstance(expr, ast.Compare):
        return f"assert {ast.unparse(expr)}"
    return None


def _free_names(expr: ast.expr, entry_point: str) -> set[str]:
    """Names an example uses that nothing defines (``is_happy(a)`` written in prose)."""
    loaded = {n.id for n in ast.walk(expr) if isinstance(n, ast.Name)}
    bound = {n.id for n in ast.walk(expr) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    bound |= {a.arg for n in ast.walk(expr) if isinstance(n, ast.Lambda) for a in n.args.args}
    return loaded - bound - _BUILTINS - {entry_point}


def _parse_expr(source: str) -> ast.expr | None:
    try:
        return ast.parse(source.strip(), mode="eval").body
    except (SyntaxError, ValueError):
        return None
