"""Keeping the tests honest inside the child.

The program and its tests share one interpreter, so a program can try to make the tests lie:
return an object whose ``__eq__`` is always true, patch ``abs`` or ``math.isclose``, rebind the
test's helpers. This module narrows those routes:

- values that reach an assert's comparisons, or come back from the program's functions, must be
  made of *trusted* types: immutable (C-defined) types such as int, str, list, dict, numpy
  scalars, plus a few stdlib classes whose methods are checked for tampering;
- asserts are rewritten so that every comparison and the final truth test go through
  :func:`compare` and :func:`truth`, which check their operands first and remember the last
  operands (that is how a failing ``assert f(x) == y`` reports what ``f(x)`` returned);
- the common modules and the builtins are snapshotted in the fork server and verified after the
  tests: a program that rebinds, say, ``math.isclose`` (at import or while being tested) fails
  with ``Tampering``; the tests themselves always get a fresh copy of the builtins.

It is defence in depth: the verdict for input/output styles is decided by the parent anyway.
"""

from __future__ import annotations

import ast
import builtins
import collections
import ctypes
import fractions
import functools
import itertools
import operator
import sys
import types

_IMMUTABLE_FLAG = 1 << 8            # Py_TPFLAGS_IMMUTABLETYPE: C-defined, attributes cannot change
_CHECKED_CLASSES = (fractions.Fraction, collections.Counter, collections.OrderedDict,
                    collections.defaultdict, collections.deque, collections.ChainMap)
_PROTECTED_MODULES = ("builtins", "math", "cmath", "operator", "functools", "itertools", "collections",
                      "heapq", "bisect", "re", "string", "random", "statistics", "fractions", "decimal",
                      "copy", "json", "types", "array", "datetime")
# numpy's namespace is large (checking it all costs copy-on-write faults in every child): only the
# names tests compare with are protected.
_NUMPY_NAMES = ("allclose", "isclose", "array_equal", "array_equiv", "array", "asarray", "abs", "absolute",
                "all", "any", "sum", "round", "isnan", "isinf", "isfinite", "testing", "equal", "sort")
_OPS = {"Eq": operator.eq, "NotEq": operator.ne, "Lt": operator.lt, "LtE": operator.le, "Gt": operator.gt,
        "GtE": operator.ge, "Is": operator.is_, "IsNot": operator.is_not, "In": operator.contains,
        "NotIn": lambda a, b: not operator.contains(a, b)}
_MAX_NODES = 2_000_000

_type, _id, _isinstance, _len, _bool = type, id, isinstance, len, bool


class UntrustedValue(TypeError):
    """A value of a type the program defined reached a test comparison."""


class Tampering(RuntimeError):
    """The program changed a protected module, the test builtins or a checked class."""


def _trusted_type(t: type) -> bool:
    return _bool(t.__flags__ & _IMMUTABLE_FLAG) or t in _CHECKED_CLASSES


def _children(value):
    t = _type(value)
    if t in (list, tuple, set, frozenset, collections.deque):
        return value
    if t is dict or t in (collections.Counter, collections.OrderedDict, collections.defaultdict):
        return [*value.keys(), *value.values()]
    if t in (types.SimpleNamespace, types.MappingProxyType):
        mapping = vars(value) if t is types.SimpleNamespace else value
        return [*mapping.keys(), *mapping.values()]
    if t is slice:
        return (value.start, value.stop, value.step)
    if t.__name__ in ("dict_keys", "dict_values", "dict_items") and t.__module__ == "builtins":
        return list(value)
    if t is collections.ChainMap:
        return value.maps
    if t.__name__ == "ndarray" and getattr(value, "dtype", None) is not None and value.dtype.hasobject:
        return value.ravel().tolist()
    return ()


_SEEN_CHECKED: set[type] = set()      # checked classes whose instances reached a test (per child)


def check_trusted(value) -> None:
    """Raise :class:`UntrustedValue` unless ``value`` and everything it contains is trusted."""
    stack, seen, count = [value], set(), 0
    while stack:
        item = stack.pop()
        if _id(item) in seen:
            continue
        seen.add(_id(item))
        count += 1
        if count > _MAX_NODES:
            raise UntrustedValue("value too large to check")
        t = _type(item)
        if not _trusted_type(t):
            raise UntrustedValue(f"a value of type {t.__qualname__!s} cannot be checked by a test")
        if t in _CHECKED_CLASSES:
            _SEEN_CHECKED.add(t)
        stack.extend(_children(item))


class Recorder:
    """Remembers the operands of the last comparison and which assert failed."""

    def __init__(self) -> None:
        self.last: tuple = ()
        self.failed_assert: int | None = None

    def compare(self, index: int, left, ops: tuple, *rights):
        """``left op0 rights[0] op1 rights[1] ...`` with Python's chaining, operands checked."""
        check_trusted(left)
        operands = (left, *rights)
        self.last = (index, operands)
        result = True
        for i, op in enumerate(ops):
            a, b = operands[i], operands[i + 1]
            check_trusted(b)
            result = _OPS[op](b, a) if op in ("In", "NotIn") else _OPS[op](a, b)
            if i < _len(ops) - 1 and not result:
                return result
        return result

    def truth(self, index: int, value) -> bool:
        check_trusted(value)
        ok = _bool(value)
        if not ok:
            self.failed_assert = index
        return ok


def _located(node: ast.AST, where: ast.AST) -> ast.AST:
    """``node`` with ``where``'s source position (set directly: no tree walk afterwards)."""
    node.lineno, node.col_offset = where.lineno, where.col_offset
    node.end_lineno, node.end_col_offset = where.end_lineno, where.end_col_offset
    return node


def _call(name: str, args: list, where: ast.AST) -> ast.Call:
    func = _located(ast.Name(name, ast.Load()), where)
    return _located(ast.Call(func=func, args=args, keywords=[]), where)


_LEAVES = (ast.Constant, ast.Name, ast.expr_context)     # nodes that cannot hold a comparison


def _routed(node: ast.AST, index: int) -> ast.AST:
    """``node`` (part of assert ``index``'s test) with every comparison in it, itself included,
    turned into ``__dc_compare__(index, left, ops, *rights)``, innermost first. A hand-written walk
    that skips leaves: several times cheaper than ``ast.NodeTransformer`` on long literals."""
    for name in node._fields:
        value = getattr(node, name, None)
        if _type(value) is list:
            for i, item in enumerate(value):
                if _isinstance(item, ast.AST) and not _isinstance(item, _LEAVES):
                    value[i] = _routed(item, index)
        elif _isinstance(value, ast.AST) and not _isinstance(value, _LEAVES):
            setattr(node, name, _routed(value, index))
    if _type(node) is not ast.Compare:
        return node
    names = [_located(ast.Constant(_type(op).__name__), node) for op in node.ops]
    ops = _located(ast.Tuple(names, ast.Load()), node)
    return _call("__dc_compare__", [_located(ast.Constant(index), node), node.left, ops, *node.comparators], node)


def _rewrite(node: ast.Assert, index: int) -> None:
    """Route one assert through the recorder, in place: ``assert __dc_truth__(index, test')``."""
    test = node.test if _isinstance(node.test, _LEAVES) else _routed(node.test, index)
    node.test = _call("__dc_truth__", [_located(ast.Constant(index), node), test], node)


class _Source:
    """Source segments by node position in O(1) (``ast.get_source_segment`` re-splits the whole
    source on every call, which dominated the cost of preparing a long check function)."""

    def __init__(self, source: str) -> None:
        self.lines = [line.encode("utf-8") for line in source.splitlines(keepends=True)]

    def text(self, node: ast.AST) -> str:
        try:
            first, last = node.lineno - 1, node.end_lineno - 1
            if first == last:
                chunk = self.lines[first][node.col_offset:node.end_col_offset]
            else:
                chunk = b"".join([self.lines[first][node.col_offset:], *self.lines[first + 1:last],
                                  self.lines[last][:node.end_col_offset]])
            return chunk.decode("utf-8")
        except (AttributeError, IndexError, TypeError, UnicodeDecodeError):
            return ast.unparse(node)


def describe_assert(source: _Source, node: ast.Assert) -> dict:
    """Source of an assert and, for ``assert f(args) == expected``, its call and expected parts."""
    info = {"source": source.text(node), "line": node.lineno, "call": None, "args": None, "expected": None}
    test = node.test
    if (_isinstance(test, ast.Compare) and _len(test.ops) == 1 and _isinstance(test.ops[0], ast.Eq)
            and _isinstance(test.left, ast.Call)):
        call = test.left
        parts = [source.text(a) for a in call.args] + [source.text(k) for k in call.keywords]
        info.update(call=source.text(call), args="(" + ", ".join(parts) + ")",
                    expected=source.text(test.comparators[0]))
    return info


_BLOCKS = ("body", "orelse", "finalbody", "handlers", "cases")


def _statements(block: list):
    """Every statement in a block, depth first in source order, without visiting expressions
    (asserts are statements: walking only blocks is much cheaper than a full ``ast.walk``)."""
    for node in block:
        yield node
        for name in _BLOCKS:
            inner = getattr(node, name, None)
            if inner:
                yield from _statements(inner)


@functools.lru_cache(maxsize=1024)
def rewrite_asserts(source: str, filename: str) -> tuple[types.CodeType, list[dict], frozenset]:
    """Compile ``source`` with its asserts routed through a :class:`Recorder` (the names
    ``__dc_truth__`` / ``__dc_compare__`` come from the namespace's builtins); also return a
    description of each assert, indexed as the recorder reports them, and the packages the
    source imports. Cached: the fork server prepares a job's test code before forking, so
    repeated tests cost the children nothing."""
    tree = ast.parse(source, filename)
    text = _Source(source)
    statements = list(_statements(tree.body))
    asserts = [node for node in statements if _isinstance(node, ast.Assert)]
    found = [describe_assert(text, node) for node in asserts]
    for index, node in enumerate(asserts):
        _rewrite(node, index)
    return compile(tree, filename, "exec"), found, frozenset(_imports(statements))


def _imports(statements: list) -> set[str]:
    """Top-level package names the statements import."""
    names = set()
    for node in statements:
        if _isinstance(node, ast.Import):
            names.update(alias.name.partition(".")[0] for alias in node.names)
        elif _isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.partition(".")[0])
    return names


def guarded(func, check=check_trusted):
    """Wrap a program function so that what it returns must be trusted."""

    def call(*args, **kwargs):
        result = func(*args, **kwargs)
        check(result)
        return result

    call.__name__ = getattr(func, "__name__", "candidate")
    call.__wrapped_candidate__ = func
    return call


class Snapshot:
    """Identity snapshot of protected module dicts, the builtins, the checked classes and this
    module's own machinery (its globals, comparison table, recorder class and function code).

    Taken once in the fork server, which also builds here the recorder and the test builtins:
    each child gets its own pristine copy of them by forking, instead of copying the builtins
    (which touches, and so copies, every page holding a builtin object). The dicts' version
    tags are kept too: a dict whose tag has not moved has not changed, so it needs no check."""

    def __init__(self) -> None:
        self.modules = {name: dict(vars(sys.modules[name])) for name in _PROTECTED_MODULES if name in sys.modules}
        if "numpy" in sys.modules:
            numpy = vars(sys.modules["numpy"])
            self.modules["numpy"] = {k: numpy[k] for k in _NUMPY_NAMES if k in numpy}
        self.module_objects = {name: sys.modules[name] for name in self.modules}
        self.module_tags = {name: _tag(vars(module)) for name, module in self.module_objects.items()}
        self.classes = {cls: dict(vars(cls)) for cls in (*_CHECKED_CLASSES, Recorder)}
        self.builtins = dict(vars(builtins))
        self.internals = [(globals(), dict(globals())), (_OPS, dict(_OPS))]
        self.code = {f: f.__code__ for f in (check_trusted, _children, _trusted_type, guarded, *vars(Recorder).values())
                     if _isinstance(f, types.FunctionType)}
        self.recorder = Recorder()
        self.helpers = {"__dc_truth__": self.recorder.truth, "__dc_compare__": self.recorder.compare}
        self.test_builtins = {**self.builtins, **self.helpers}
        self.tags = {_id(d): _tag(d) for d in (self.test_builtins, *(current for current, _ in self.internals))}

    def _unchanged(self, current: dict, tag: int | None) -> bool:
        return tag is not None and _tag(current) == tag

    def changed(self, test_builtins: dict | None = None, modules: set[str] | frozenset = frozenset()) -> str | None:
        """The first protected thing that differs from the snapshot, or None. Only the protected
        ``modules`` the tests can see are checked (each check touches, and so copies, memory
        shared with the fork server)."""
        for name in modules:
            module = self.module_objects.get(name)
            if module is None:
                continue
            if sys.modules.get(name) is not module or (not self._unchanged(vars(module), self.module_tags[name])
                                                       and _differs(vars(module), self.modules[name])):
                return f"module {name}"
        for cls in (*_SEEN_CHECKED, Recorder):
            if _differs(vars(cls), self.classes[cls]):
                return f"class {cls.__qualname__}"
        if any(not self._unchanged(current, self.tags.get(_id(current))) and _differs(current, saved)
               for current, saved in self.internals) or any(f.__code__ is not code for f, code in self.code.items()):
            return "the test harness"
        if test_builtins is not None and not self._unchanged(test_builtins, self.tags.get(_id(test_builtins))):
            saved = {k: v for k, v in test_builtins.items() if k in self.builtins or k in self.helpers}
            if _differs(saved, {**self.builtins, **self.helpers}):
                return "test builtins"
        return None


def visible_modules(names: dict, imported: set[str]) -> set[str]:
    """Modules the tests can reach: those their code imports and those bound in their namespace."""
    bound = {value.__name__.partition(".")[0] for value in names.values() if _isinstance(value, types.ModuleType)}
    return bound | imported


_MISSING = object()


def _tag_reader():
    """A function returning a dict's version tag, or None where it cannot be read safely.

    CPython 3.11 to 3.13 (with the GIL) give every dict a version tag, right after the object
    header and the item count, that every change of the dict moves to a new, never reused value
    (PEP 509). The layout is checked on a probe dict before it is trusted."""
    if sys.implementation.name != "cpython" or not (3, 11) <= sys.version_info[:2] <= (3, 13):
        return None
    if not getattr(sys, "_is_gil_enabled", lambda: True)():
        return None
    word = ctypes.sizeof(ctypes.c_ssize_t)
    used_at, tag_at = 2 * word, 3 * word
    field, count = ctypes.c_uint64, ctypes.c_ssize_t

    def tag(d: dict) -> int:
        return field.from_address(_id(d) + tag_at).value

    probe: dict = {}
    before = tag(probe)
    probe["x"] = 1
    after = tag(probe)
    probe["x"] = 2
    if not before != after != tag(probe) or count.from_address(_id(probe) + used_at).value != 1:
        return None
    return tag


_TAG_READER = _tag_reader()


def _tag(d: dict) -> int | None:
    """``d``'s version tag (None when tags cannot be read here: everything is then compared)."""
    return _TAG_READER(d) if _TAG_READER is not None else None


def _differs(current, saved: dict) -> bool:
    """Whether any saved key is now bound to another object (identity; C-level loop)."""
    now = map(current.get, saved.keys(), itertools.repeat(_MISSING))
    return not all(map(operator.is_, now, saved.values()))
