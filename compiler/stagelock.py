"""Stage versions, tied to the code behind them.

A stage's fingerprint holds ``name@version``, never its code, so a change of behaviour must come
with a version bump or stores keep serving outputs of the old code. ``compiler/stage_versions.json``
records, per stage, its version and a hash of the code that defines its behaviour: the stage class
(its params and their defaults included) and, followed through the names it uses, every function,
class and constant of the project it reaches — prompt templates, parsers, prompt builders. Comments,
docstrings, param descriptions and formatting do not count. The LLM layer, the store, the runner and
the sandbox are left out: requests are cached by their full content, and the sandbox's semantics
version enters the fingerprint of every stage that runs code. So are the members that only describe
a stage for planning (``version``, ``reads``/``writes``, ``scope``, ``columns()``, estimates).

    python -m compiler.stagelock            # check (exit 1 on a problem; a test runs the same check)
    python -m compiler.stagelock --write    # record new stages and bumped versions
    python -m compiler.stagelock --write --accept NAME   # record a change that keeps behaviour (a refactor)
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import inspect
import json
import re
import sys
import textwrap
import types
from pathlib import Path
from typing import Any

LOCK = Path(__file__).resolve().parent / "stage_versions.json"
PROJECT = ("compiler", "evals")
# Behaviour these cover by other means (cache keys, the sandbox semantics version) or that is the
# stage framework itself.
SKIP = ("compiler.llm", "compiler.store", "compiler.runner", "compiler.errors", "compiler.progress",
        "compiler.plan", "compiler.fingerprint", "compiler.wiring", "evals.sandbox")
FRAMEWORK = {"Stage", "Params", "StageOutput", "Columns", "Column", "register", "expand", "placeholders"}
# Class members that describe a stage for planning and docs, not what it does to rows.
PLANNING = {"version", "reads", "writes", "scope", "method", "storage", "reads_declared_only", "columns", "scope_for",
            "earlier_stages", "sample_requests", "expected_requests", "prior_requests", "preflight", "files", "embeds_for",
            "fixed_requests", "expected_rows"}
CONSTANTS = (str, bytes, int, float, bool, tuple, frozenset, list, dict, re.Pattern, type(None))


def _in_project(module: str | None) -> bool:
    if not module or module.split(".")[0] not in PROJECT:
        return False
    return not any(module == s or module.startswith(s + ".") for s in SKIP)


def normalised(source: str) -> str:
    """The AST of ``source`` without docstrings and ``description=`` keywords, as text."""
    tree = ast.parse(textwrap.dedent(source))
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            node.body = [b for b in node.body if _member(b) not in PLANNING] or [ast.Pass()]
            node.decorator_list = [d for d in node.decorator_list
                                   if not (isinstance(d, ast.Name) and d.id == "register")]
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
        if isinstance(node, ast.Call):
            node.keywords = [k for k in node.keywords if k.arg != "description"]
    return ast.dump(tree, annotate_fields=False, include_attributes=False)


def _member(node: ast.stmt) -> str | None:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return node.name
    target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else \
        node.target if isinstance(node, ast.AnnAssign) else None
    return target.id if isinstance(target, ast.Name) else None


def _referenced(tree: ast.AST, namespace: dict[str, Any]) -> list[tuple[str, Any]]:
    """(name, object) for the globals a piece of code uses, and attributes of modules it uses."""
    found: list[tuple[str, Any]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in namespace:
            found.append((node.id, namespace[node.id]))
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            owner = namespace.get(node.value.id)
            if isinstance(owner, types.ModuleType) and hasattr(owner, node.attr):
                found.append((f"{owner.__name__}.{node.attr}", getattr(owner, node.attr)))
    return found


def behaviour(obj: Any) -> list[tuple[str, str]]:
    """(name, normalised code or constant value) for everything reachable from ``obj``, sorted.
    Names leave the module out, so moving code between modules changes nothing."""
    out: list[tuple[str, str]] = []
    seen: set[int] = set()
    constants: set[tuple[str, str]] = set()
    todo = [obj]
    while todo:
        item = todo.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        source = inspect.getsource(item)
        out.append((item.__qualname__, normalised(source)))
        namespace = vars(sys.modules[item.__module__])
        for name, ref in _referenced(ast.parse(textwrap.dedent(source)), namespace):
            if isinstance(ref, (types.FunctionType, type)):
                if _in_project(ref.__module__) and ref.__name__ not in FRAMEWORK:
                    todo.append(ref)
            elif isinstance(ref, CONSTANTS):
                constants.add((name.rsplit(".", 1)[-1], stable_repr(ref)))
    return sorted(out) + sorted(constants)


def stable_repr(value: Any) -> str:
    """``repr`` that does not depend on hash randomisation (sets sorted) or memory addresses."""
    if isinstance(value, (set, frozenset)):
        return "{" + ", ".join(sorted(stable_repr(v) for v in value)) + "}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{stable_repr(k)}: {stable_repr(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(stable_repr(v) for v in value) + "]"
    if isinstance(value, re.Pattern):
        return f"re({value.pattern!r}, {value.flags})"
    text = repr(value)
    return re.sub(r" at 0x[0-9a-f]+", "", text)


def source_hash(obj: Any) -> str:
    blob = "\n".join(f"{name}\n{text}" for name, text in behaviour(obj))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def current() -> dict[str, dict[str, Any]]:
    """Every registered stage's version and source hash."""
    from compiler.stages import load_all
    from compiler.stages.sources import SOURCES_VERSION, load_sources

    found = {name: {"version": cls.version, "source": source_hash(cls)} for name, cls in load_all().items()}
    found["sources"] = {"version": SOURCES_VERSION, "source": source_hash(load_sources)}
    return dict(sorted(found.items()))


def read_lock(path: Path = LOCK) -> dict[str, dict[str, Any]]:
    return json.loads(path.read_text(encoding="utf-8"))["stages"] if path.exists() else {}


def problems(now: dict[str, dict[str, Any]], lock: dict[str, dict[str, Any]]) -> list[str]:
    """What is wrong between the stages as they are and the recorded table (empty: all good)."""
    out = []
    for name, entry in now.items():
        old = lock.get(name)
        if old is None:
            out.append(f"stage {name!r} is not in the table: run `python -m compiler.stagelock --write`")
        elif entry["version"] < old["version"]:
            out.append(f"stage {name!r}: version went down from {old['version']} to {entry['version']}")
        elif entry["source"] != old["source"] and entry["version"] == old["version"]:
            out.append(f"stage {name!r}: its code changed but its version is still {entry['version']}: bump "
                       "`version` (stored outputs of the old code would be reused), then run "
                       "`python -m compiler.stagelock --write` (a refactor that keeps behaviour: `--accept "
                       f"{name}`)")
        elif entry != old:
            out.append(f"stage {name!r}: version {entry['version']} is not recorded yet: run "
                       "`python -m compiler.stagelock --write`")
    out += [f"stage {name!r} is in the table but no longer exists: run `python -m compiler.stagelock --write`"
            for name in lock if name not in now]
    return out


def write(now: dict[str, dict[str, Any]], lock: dict[str, dict[str, Any]], accept: set[str],
          path: Path = LOCK) -> list[str]:
    """Record ``now``; refuses (and returns the problems) when code changed without a version bump,
    unless the stage is in ``accept``."""
    refused = [p for p in problems(now, lock) if "code changed" in p and not any(f"{a!r}" in p for a in accept)]
    if refused:
        return refused
    doc = {"about": "stage -> version and hash of the code behind it; see compiler/stagelock.py", "stages": now}
    path.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return []


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m compiler.stagelock", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--write", action="store_true", help=f"rewrite {LOCK.name}")
    p.add_argument("--accept", action="append", default=[], metavar="STAGE",
                   help="record this stage's changed code without a version bump (behaviour kept)")
    args = p.parse_args(argv)
    now, lock = current(), read_lock()
    found = write(now, lock, set(args.accept)) if args.write else problems(now, lock)
    for line in found:
        print(line, file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
