"""Argument types that JSON loses in the EvalPlus releases.

MBPP+ stores every input as JSON, so a tuple argument (``similar_elements((3, 4), (4, 5))``)
arrives as a list, and a solution doing ``tup + (x,)`` would fail on the benchmark's own input.
Each problem's example assertion shows the real argument types, so we take its call as a
*template* and convert every stored input to the same shape: a list where the template holds a
tuple (or a set) becomes one, recursively. The converted arguments are encoded with the sandbox's
value encoding (tagged JSON), which the sandbox decodes before calling the entry point. Problems
whose examples hold only JSON-native types keep their inputs as they are.
"""

from __future__ import annotations

import ast
import json
from typing import Any


def example_args(assertion: str, entry_point: str) -> list[Any] | None:
    """Positional arguments of the first call of ``entry_point`` in the example assertions, as
    Python literals; None when there is no such call or its arguments are not literals."""
    for line in assertion.splitlines():
        try:
            tree = ast.parse(line.strip())
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == entry_point:
                try:
                    return [ast.literal_eval(a) for a in node.args]
                except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                    return None
    return None


def needs_conversion(template: Any) -> bool:
    """Whether a template holds a tuple or a set anywhere (the types JSON cannot carry)."""
    if isinstance(template, (tuple, set, frozenset)):
        return True
    if isinstance(template, list):
        return any(needs_conversion(t) for t in template)
    if isinstance(template, dict):
        return any(needs_conversion(t) for t in template.values())
    return False


def conform(value: Any, template: Any) -> Any:
    """``value`` reshaped like ``template``: lists become tuples/sets where the template has them.
    Elements follow the template's element at the same index when the lengths agree (records);
    otherwise a list element follows the template's first container element, or the template
    itself for deeper nesting than the example shows, and any other element its first element."""
    if isinstance(value, dict) and isinstance(template, dict) and template:
        inner = next(iter(template.values()))
        return {k: conform(v, template.get(k, inner)) for k, v in value.items()}
    if not isinstance(value, list) or not _is_container(template):
        return value
    items = list(template)
    same = len(items) == len(value) and not isinstance(template, (set, frozenset))
    elems = [conform(v, _element_template(items, i, v, template, same)) for i, v in enumerate(value)]
    if isinstance(template, tuple):
        return tuple(elems)
    if isinstance(template, (set, frozenset)):
        try:
            return type(template)(elems)
        except TypeError:
            return elems
    return elems


def _element_template(items: list[Any], index: int, value: Any, parent: Any, same: bool) -> Any:
    if same and (_is_container(items[index]) or not isinstance(value, list)):
        return items[index]
    if isinstance(value, list):
        return next((t for t in items if _is_container(t)), parent)
    return items[0] if items else None


def _is_container(template: Any) -> bool:
    return isinstance(template, (list, tuple, set, frozenset))


def typed_inputs(args_list: list[list[Any]], assertion: str, entry_point: str) -> list[str]:
    """Each input (a list of positional arguments) as the JSON text of a sandbox input case."""
    template = example_args(assertion, entry_point)
    if template is None or not needs_conversion(template):
        return [json.dumps(args) for args in args_list]
    from evals.sandbox.inside.encode import encode

    out = []
    for args in args_list:
        if isinstance(args, list) and len(args) == len(template):
            args = [conform(a, t) for a, t in zip(args, template)]
        out.append(json.dumps(encode(args)))
    return out
