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
- the common modules and the builtins are snapshotted in the fork server; the snapshot is restored
  after the program's top level ran and verified again after the tests.

It is defence in depth: the verdict for input/output styles is decided by the parent anyway.
"""

from __future__ import annotations

import ast
import builtins
import collections
import fractions
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


class _AssertRewriter(ast.NodeTransformer):
    def __init__(self) -> None:
        self.asserts: list[ast.Assert] = []
        self._index = -1

    def visit_Assert(self, node: ast.Assert):
        self.asserts.append(node)
        self._index = len(self.asserts) - 1
        test = self.visit(node.test)
        call = ast.Call(func=ast.Name("__dc_truth__", ast.Load()), args=[ast.Constant(self._index), test], keywords=[])
        self._index = -1
        return ast.copy_location(ast.Assert(test=call, msg=node.msg), node)

    def visit_Compare(self, node: ast.Compare):
        node = self.generic_visit(node)
        if self._index < 0:
            return node
        ops = ast.Tuple([ast.Constant(_type(op).__name__) for op in node.ops], ast.Load())
        args = [ast.Constant(self._index), node.left, ops, *node.comparators]
        call = ast.Call(func=ast.Name("__dc_compare__", ast.Load()), args=args, keywords=[])
        return ast.copy_location(call, node)


def _text(source: str, node: ast.AST) -> str:
    return ast.get_source_segment(source, node) or ast.unparse(node)


def describe_assert(source: str, node: ast.Assert) -> dict:
    """Source of an assert and, for ``assert f(args) == expected``, its call and expected parts."""
    info = {"source": _text(source, node), "line": node.lineno, "call": None, "args": None, "expected": None}
    test = node.test
    if (_isinstance(test, ast.Compare) and _len(test.ops) == 1 and _isinstance(test.ops[0], ast.Eq)
            and _isinstance(test.left, ast.Call)):
        call = test.left
        parts = [_text(source, a) for a in call.args] + [_text(source, k) for k in call.keywords]
        info.update(call=_text(source, call), args="(" + ", ".join(parts) + ")",
                    expected=_text(source, test.comparators[0]))
    return info


class _AssertCollector(ast.NodeVisitor):
    def __init__(self, source: str) -> None:
        self.source = source
        self.found: list[dict] = []

    def visit_Assert(self, node: ast.Assert) -> None:
        self.found.append(describe_assert(self.source, node))
        self.generic_visit(node)


def rewrite_asserts(source: str, filename: str) -> tuple[types.CodeType, list[dict]]:
    """Compile ``source`` with its asserts routed through a :class:`Recorder` (the names
    ``__dc_truth__`` / ``__dc_compare__`` come from the namespace's builtins); also return a
    description of each assert, indexed as the recorder reports them."""
    tree = ast.parse(source, filename)
    collector = _AssertCollector(source)
    collector.visit(tree)
    _AssertRewriter().visit(tree)
    ast.fix_missing_locations(tree)
    return compile(tree, filename, "exec"), collector.found


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
    module's own machinery (its globals, comparison table, recorder class and function code)."""

    def __init__(self) -> None:
        self.modules = {name: dict(vars(sys.modules[name])) for name in _PROTECTED_MODULES if name in sys.modules}
        if "numpy" in sys.modules:
            numpy = vars(sys.modules["numpy"])
            self.modules["numpy"] = {k: numpy[k] for k in _NUMPY_NAMES if k in numpy}
        self.module_objects = {name: sys.modules[name] for name in self.modules}
        self.classes = {cls: dict(vars(cls)) for cls in (*_CHECKED_CLASSES, Recorder)}
        self.builtins = dict(vars(builtins))
        self.internals = [(globals(), dict(globals())), (_OPS, dict(_OPS))]
        self.code = {f: f.__code__ for f in (check_trusted, _children, _trusted_type, guarded, *vars(Recorder).values())
                     if _isinstance(f, types.FunctionType)}
        self.helpers: dict = {}

    def fresh_builtins(self, recorder: Recorder) -> dict:
        names = dict(self.builtins)
        self.helpers = {"__dc_truth__": recorder.truth, "__dc_compare__": recorder.compare}
        names.update(self.helpers)
        return names

    def restore(self) -> None:
        """Undo changes the program made at import time (silently: it may be legitimate)."""
        for name, module in self.module_objects.items():
            sys.modules[name] = module
            _restore_dict(vars(module), self.modules[name])

    def changed(self, test_builtins: dict | None = None) -> str | None:
        """The first protected thing that differs from the snapshot, or None."""
        for name, module in self.module_objects.items():
            if sys.modules.get(name) is not module or _differs(vars(module), self.modules[name]):
                return f"module {name}"
        for cls, saved in self.classes.items():
            if _differs(vars(cls), saved):
                return f"class {cls.__qualname__}"
        if any(_differs(current, saved) for current, saved in self.internals) or any(
                f.__code__ is not code for f, code in self.code.items()):
            return "the test harness"
        if test_builtins is not None:
            saved = {k: v for k, v in test_builtins.items() if k in self.builtins or k in self.helpers}
            if _differs(saved, {**self.builtins, **self.helpers}):
                return "test builtins"
        return None


def _differs(current, saved: dict) -> bool:
    missing = object()
    return any(current.get(key, missing) is not value for key, value in saved.items())


def _restore_dict(current: dict, saved: dict) -> None:
    if not _differs(current, saved):
        return
    for key, value in saved.items():
        if current.get(key) is not value:
            current[key] = value
