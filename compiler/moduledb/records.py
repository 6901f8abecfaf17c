"""What a module of the database is, and how modules are taken out of code.

A module is one top-level Python function that runs in isolation: every name it uses is a
parameter, a local, a builtin, itself, or a module it imports (those imports travel with it in
``code``). Its ``signature`` is the ``def`` line rebuilt by ``ast``; its ``docstring`` the function's
own. What a module is embedded as (METHODS §2(h)-2): the signature and the docstring, optionally
the body too.
"""

from __future__ import annotations

import ast
import builtins
import hashlib
from dataclasses import dataclass, field
from typing import Literal

from evals import codeinfo
from evals.sandbox.types import Job, Limits, TestCase, TestSpec

Origin = Literal["seed", "evolved", "imported"]
ModuleText = Literal["signature_docstring", "with_code"]
_BUILTINS = frozenset(dir(builtins))
_Func = (ast.FunctionDef, ast.AsyncFunctionDef)


@dataclass(frozen=True)
class Module:
    name: str
    signature: str
    docstring: str
    code: str
    tests: tuple[str, ...] = ()
    origin: Origin = "imported"
    source: str | None = None
    verified: bool = False
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def module_id(self) -> str:
        return hashlib.sha256(f"{self.name}\x1f{self.code.strip()}".encode("utf-8")).hexdigest()[:16]

    def text(self, how: ModuleText = "signature_docstring") -> str:
        return module_text(self.signature, self.docstring, self.code, how)


def module_text(signature: str, docstring: str | None, code: str, how: ModuleText = "signature_docstring") -> str:
    """The text a module is embedded as."""
    if how == "with_code":
        return code.strip()
    return f"{signature}\n{(docstring or '').strip()}".strip()


def signature_of(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    prefix = "async def" if isinstance(node, ast.AsyncFunctionDef) else "def"
    returns = f" -> {ast.unparse(node.returns)}" if node.returns is not None else ""
    return f"{prefix} {node.name}({ast.unparse(node.args)}){returns}:"


def _bound_names(node: ast.AST) -> set[str]:
    """Names a function binds: parameters, assignments, loop and comprehension targets, nested
    definitions, imports, exception names."""
    bound: set[str] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.arg):
            bound.add(sub.arg)
        elif isinstance(sub, ast.Name) and isinstance(sub.ctx, (ast.Store, ast.Del)):
            bound.add(sub.id)
        elif isinstance(sub, (*_Func, ast.ClassDef)):
            bound.add(sub.name)
        elif isinstance(sub, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in sub.names)
        elif isinstance(sub, ast.ExceptHandler) and sub.name:
            bound.add(sub.name)
        elif isinstance(sub, (ast.Global, ast.Nonlocal)):
            bound.update(sub.names)
    return bound


def free_names(node: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    """Names the function reads that it does not bind and that are not builtins."""
    used = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return used - _bound_names(node) - _BUILTINS


def _top_imports(tree: ast.Module, code: str) -> dict[str, str]:
    """Each name a top-level import binds -> the import statement's source."""
    out: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            text = ast.get_source_segment(code, node) or ast.unparse(node)
            for alias in node.names:
                out[(alias.asname or alias.name).split(".")[0]] = text
    return out


@dataclass(frozen=True)
class Found:
    """A function found in code: the module it makes, or why it is not one (``missing``)."""

    name: str
    module: Module | None
    missing: tuple[str, ...] = ()


def functions_in(code: str, *, origin: Origin = "evolved", source: str | None = None,
                 skip: tuple[str, ...] = ()) -> list[Found]:
    """Every top-level function of ``code`` (except ``skip``) as a module with the imports it uses,
    or with the free names that keep it from running in isolation."""
    tree = codeinfo.parse(code)
    if tree is None:
        return []
    imports = _top_imports(tree, code)
    found = []
    for node in tree.body:
        if not isinstance(node, _Func) or node.name in skip:
            continue
        free = free_names(node) - {node.name}
        needed = sorted(n for n in free if n in imports)
        missing = tuple(sorted(free - set(needed)))
        if missing:
            found.append(Found(node.name, None, missing))
            continue
        start = min([node.lineno] + [d.lineno for d in node.decorator_list])
        body = "\n".join(code.splitlines()[start - 1:node.end_lineno])
        head = "".join(t + "\n" for t in dict.fromkeys(imports[n] for n in needed))
        found.append(Found(node.name, Module(node.name, signature_of(node), ast.get_docstring(node) or "",
                                             (head + ("\n" if head else "") + body).rstrip() + "\n",
                                             origin=origin, source=source)))
    return found


def module_from_code(name: str, code: str, *, tests: tuple[str, ...] = (), docstring: str | None = None,
                     origin: Origin = "imported", source: str | None = None) -> Module | None:
    """The module defining ``name`` in ``code`` (the whole code is kept); None when it does not."""
    tree = codeinfo.parse(code)
    node = next((n for n in (tree.body if tree else []) if isinstance(n, _Func) and n.name == name), None)
    if node is None:
        return None
    doc = docstring if docstring is not None else (ast.get_docstring(node) or "")
    return Module(name, signature_of(node), doc, code.rstrip() + "\n", tuple(tests), origin, source)


def asserts_in(text: str, name: str) -> list[str]:
    """The top-level ``assert`` statements of ``text`` that call ``name``, in order, without repeats."""
    tree = codeinfo.parse(text)
    if tree is None:
        return []
    out = []
    for node in tree.body:
        if isinstance(node, ast.Assert) and name in codeinfo.called_names(ast.unparse(node)):
            out.append(ast.unparse(node))
    return list(dict.fromkeys(out))


def verification_job(module: Module, cpu_seconds: float = 5.0) -> Job:
    """The sandbox job that runs a module's tests (MBPP style: its code, then each assert)."""
    cases = tuple(TestCase(kind="assert", code=t) for t in module.tests)
    return Job(code=module.code, tests=TestSpec(style="mbpp", entry_point=module.name, cases=cases),
               limits=Limits(cpu_seconds=cpu_seconds))
