"""Reading a modular decomposition (METHODS §2(b) A3) into function specs: name, typed signature,
description, params and returns.

The teacher's answer is read from its fenced Python blocks (else the whole text). Every line that
starts a ``def`` begins a spec, which runs to the next ``def``. A spec's signature is its ``def`` line
(or lines, up to the colon that closes them); it is parsed with ``ast`` (with a placeholder body), and
its params and return type come from the annotations. The description, parameter and return texts
come from the docstring or comment lines under it: a ``Description:`` section (else the first
paragraph), ``Parameters:``/``Args:`` items ``- name (type): text``, and ``Returns:``. A spec whose
signature does not parse is not dropped silently: it comes back as a :class:`BadSpec` with the reason.
"""

from __future__ import annotations

import ast
import re
from dataclasses import asdict, dataclass, field

from compiler.codeparse import fenced_blocks

_DEF = re.compile(r"^\s*(async\s+)?def\s+")
_SECTION = re.compile(r"^\s*(description|parameters|params|args|arguments|inputs?|returns?|outputs?)\s*:\s*(.*)$", re.I)
_ITEM = re.compile(r"^\s*[-*]?\s*(\w+)\s*(?:\(([^)]*)\))?\s*:\s*(.*)$")


@dataclass(frozen=True)
class Spec:
    name: str
    signature: str
    description: str
    params: dict[str, str] = field(default_factory=dict)   # name -> type and/or text
    returns: str = ""

    def text(self) -> str:
        """What a spec is embedded as for retrieval (METHODS §2(h)-2): its signature and description."""
        return f"{self.signature}\n{self.description}".strip()

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class BadSpec:
    first_line: str
    reason: str


def _chunks(text: str) -> list[list[str]]:
    blocks = fenced_blocks(text)
    body = "\n".join(b.code for b in blocks) if blocks else text
    chunks: list[list[str]] = []
    for line in body.splitlines():
        if _DEF.match(line):
            chunks.append([line])
        elif chunks:
            chunks[-1].append(line)
    return chunks


def _signature_lines(lines: list[str]) -> tuple[str, list[str]] | None:
    """The ``def`` header (joined, dedented) and the lines after it; None when no line closes it."""
    depth = 0
    for i, line in enumerate(lines):
        for ch in line:
            depth += ch in "([{"
            depth -= ch in ")]}"
        if depth <= 0 and line.rstrip().endswith(":"):
            return " ".join(l.strip() for l in lines[: i + 1]), lines[i + 1:]
    return None


def _docs(rest: list[str]) -> list[str]:
    """The docstring or comment lines under a header, without quotes, comment marks and indentation."""
    out = []
    for line in rest:
        stripped = line.strip()
        if stripped in ("pass", "...", "```"):
            continue
        out.append(stripped.strip('"').strip("'").lstrip("#").strip() if stripped.startswith(('"""', "'''", "#"))
                   or stripped.endswith(('"""', "'''")) else stripped)
    while out and not out[-1]:
        out.pop()
    return out


def _sections(lines: list[str]) -> tuple[str, dict[str, tuple[str, str]], str]:
    """(description, parameter texts, returns text) from docstring lines."""
    current, parts = "description", {"description": [], "params": [], "returns": []}
    for line in lines:
        m = _SECTION.match(line)
        if m:
            key = m.group(1).lower()
            current = "description" if key == "description" else "returns" if key.startswith(("return", "output")) else "params"
            line = m.group(2)
        if line:
            parts[current].append(line)
        elif current == "description" and parts["description"]:
            current = "rest"
            parts.setdefault("rest", [])
    params = {}
    for item in parts["params"]:
        m = _ITEM.match(item)
        if m:
            params[m.group(1)] = ((m.group(2) or "").strip(), m.group(3).strip())
    return " ".join(parts["description"]).strip(), params, " ".join(parts["returns"]).strip(" -")


def parse_spec(lines: list[str]) -> Spec | BadSpec:
    first = lines[0].strip()
    head = _signature_lines(lines) or ((first, lines[1:]) if first.endswith(":") else None)
    if head is None:
        return BadSpec(first, "the signature is not closed by a colon")
    header, rest = head
    try:
        node = ast.parse(header.lstrip() + "\n    ...").body[0]
    except SyntaxError as exc:
        return BadSpec(first, f"the signature does not parse ({exc.msg})")
    assert isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    description, texts, returns = _sections(_docs(rest))
    if not description:
        return BadSpec(first, "no description under the signature")
    params = {}
    for arg in node.args.posonlyargs + node.args.args + node.args.kwonlyargs:
        doc_type, doc_text = texts.get(arg.arg, ("", ""))
        typed = ast.unparse(arg.annotation) if arg.annotation is not None else doc_type
        params[arg.arg] = ": ".join(x for x in (typed, doc_text) if x)
    typed_return = ast.unparse(node.returns) if node.returns is not None else ""
    signature = header.strip()
    return Spec(node.name, signature, description, params, returns or typed_return)


def parse_specs(text: str) -> tuple[list[Spec], list[BadSpec]]:
    """The specs of a decomposition (first of each name) and the ones that could not be read."""
    good: list[Spec] = []
    bad: list[BadSpec] = []
    for chunk in _chunks(text or ""):
        spec = parse_spec(chunk)
        if isinstance(spec, BadSpec):
            bad.append(spec)
        elif all(s.name != spec.name for s in good):
            good.append(spec)
    return good, bad


def specs_text(specs: list[dict[str, object]]) -> str:
    """Specs as the evolution prompt shows them: each signature with its description."""
    return "\n\n".join(f"{s['signature']}\n    # {s['description']}" for s in specs)
