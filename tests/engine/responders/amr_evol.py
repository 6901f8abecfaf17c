"""Scripted answers to AMR-Evol's own prompts: new and harder instructions (each keeps a task's
instruction inside it, so later prompts still name the task), decompositions of the solution shown,
seed modules with their asserts, asserts for a module, test functions, and the judge's "no". The direct
answer, the evolved answer, CoT and the repair are the shared scripted answer (the task's reference in
a fence)."""

from __future__ import annotations

import ast
import json
import re
from typing import Any

from compiler.codeparse import extract_code


def _text(body: dict[str, Any]) -> str:
    return body.get("prompt") or "\n".join(m["content"] for m in body["messages"] if m["role"] == "user")


def _task(text: str, tasks: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((t for t in tasks if t["instruction"].strip() in text), None)


def _asserts(task: dict[str, Any]) -> list[str]:
    """Asserts of the task's own tests (io tests as ``assert str(call) == expected``)."""
    spec = task["tests"] if isinstance(task["tests"], dict) else json.loads(task["tests"] or "{}")
    out = []
    for case in spec.get("cases", []):
        if case.get("kind") == "assert":
            out.append(case["code"])
        elif case.get("call") is not None and case.get("expected") is not None:
            out.append(f"assert str({case['call']}) == {case['expected']!r}")
    return out


def _specs(code: str) -> str:
    tree = ast.parse(code)
    parts = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            parts.append(f'def {node.name}({ast.unparse(node.args)}):\n    """\n    Description: the {node.name} step '
                         f'of the solution.\n    Returns:\n    - the result\n    """\n')
    return "```python\n" + "\n".join(parts) + "```"


def _respond(body: dict[str, Any], tasks: list[dict[str, Any]]) -> str | None:
    text = _text(body)
    if text.rstrip().endswith("New task:"):
        shown = re.findall(r"^Task \d+: (.*)$", text, re.M)
        pick = shown[body.get("seed", 0) % len(shown)] if shown else tasks[0]["instruction"]
        return f"New task: {pick.strip()} Return the result instead of printing it."
    if text.rstrip().endswith("Harder question:"):
        question = text.split("Question:\n", 1)[1].rsplit("\n\nHarder question:", 1)[0]
        return f"{question.strip()} It must also work for very large inputs."
    if "Are these two programming problems the same problem" in text:
        return "no"
    task = _task(text, tasks)
    if task is None:
        return None
    code = task["reference_solution"].rstrip() + "\n"
    if text.rstrip().endswith("RESPONSE:"):
        return _specs(code)
    if "useful building blocks" in text:
        return "\n\n".join(f"```python\n{code}\n" + "\n".join(_asserts(task)) + "\n```" for _ in range(1))
    if text.rstrip().endswith("Test:"):
        return "```python\ndef test_solution():\n" + "".join(f"    {a}\n" for a in _asserts(task)) + "```"
    return None


def module_asserts(body: dict[str, Any], tasks: list[dict[str, Any]]) -> str | None:
    """Asserts for a module (``grow_modules``): the tests of the task whose reference it is."""
    text = _text(body)
    if "assert statements that test the Python function below" not in text:
        return None
    names = re.findall(r"^def (\w+)\(", extract_code(text.split("```python", 1)[1]) or "", re.M)
    task = next((t for t in tasks if t["entry_point"] in names), None)
    return "```python\n" + "\n".join(_asserts(task)) + "\n```" if task else "no tests"


def respond(body: dict[str, Any], tasks: list[dict[str, Any]]) -> str | None:
    return module_asserts(body, tasks) or _respond(body, tasks)
