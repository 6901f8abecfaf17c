"""The engine's layout: the shared pipeline in ``compiler/stages/``, each method in its own package
``compiler/methods/<method>/``, stages discovered (no hand-kept module list), and the shared part
never depending on a method."""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path

from compiler.methods import all_methods
from compiler.stages import load_all

COMPILER = Path(__file__).resolve().parents[2] / "compiler"
STAGES, METHODS = COMPILER / "stages", COMPILER / "methods"


def modules_under(folder: Path, package: str) -> list[str]:
    names = []
    for path in sorted(folder.rglob("*.py")):
        parts = path.relative_to(folder).with_suffix("").parts
        names.append(".".join((package, *(parts[:-1] if parts[-1] == "__init__" else parts))))
    return names


def imports_of(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def test_every_stage_lives_in_the_shared_package_or_in_its_own_method_package():
    method_names = {m.name for m in all_methods()}
    for name, cls in load_all().items():
        parts = cls.__module__.split(".")
        if cls.method is None:
            assert parts[:2] == ["compiler", "stages"], f"{name} lives in {cls.__module__}"
        else:
            assert parts[:3] == ["compiler", "methods", cls.method] and cls.method in method_names, name


def test_no_method_stage_outside_its_package():
    """A stage that uses a method's code is that method's stage: it must live in that package. So
    nothing in the shared pipeline (or elsewhere in the compiler) imports a method's modules, and no
    shared module is named after a method."""
    methods = {m.name for m in all_methods()}
    for path in STAGES.rglob("*.py"):
        assert not any(i.startswith("compiler.methods") for i in imports_of(path)), path
        assert not any(path.stem.startswith(m) for m in methods), path
    for m in methods:
        for path in COMPILER.rglob("*.py"):
            if METHODS / m in path.parents or path.parent == METHODS:
                continue
            bad = {i for i in imports_of(path) if i.startswith(f"compiler.methods.{m}")}
            assert not bad, f"{path} imports {bad}: what belongs to {m} lives in compiler/methods/{m}/"


def test_stage_registration_is_discovered_not_listed():
    source = (STAGES / "__init__.py").read_text()
    module_names = {name.rsplit(".", 1)[-1] for folder, pkg in ((STAGES, "compiler.stages"),
                                                              (METHODS, "compiler.methods"))
                    for name in modules_under(folder, pkg)} - {"stages", "methods"}
    strings = {n.value for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    listed = {s for s in strings if s.rsplit(".", 1)[-1] in module_names}
    assert not listed, f"compiler/stages/__init__.py names modules {listed}: discovery must find them"
    load_all()
    for folder, pkg in ((STAGES, "compiler.stages"), (METHODS, "compiler.methods")):
        for name in modules_under(folder, pkg):
            assert name in sys.modules, f"{name} was not imported by discovery"


def test_each_method_package_describes_itself():
    for method in all_methods():
        module = importlib.import_module(f"compiler.methods.{method.name}")
        assert module.METHOD is method and module.__doc__ and method.title
        own = [n for n, c in load_all().items() if c.method == method.name]
        assert own, f"method {method.name} has no stages"
        for n in own:                      # its docstring, the package's reading guide, names its stages
            assert f"``{n}``" in module.__doc__, (method.name, n)
