"""The recipe reference, rendered from the schema and the stage registry.

``python -m compiler.docs --write`` refreshes the generated part of ``recipes/README.md`` (between the
``reference:begin``/``reference:end`` markers); a test fails when the README is out of date, so a new
field, stage or param cannot land undocumented.
"""

from __future__ import annotations

import argparse
import inspect
import sys
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from compiler.recipe import schema

BEGIN, END = "<!-- reference:begin -->", "<!-- reference:end -->"
README = Path(__file__).resolve().parent.parent / "recipes" / "README.md"

SECTIONS: tuple[tuple[str, type[BaseModel]], ...] = (
    ("Top level", schema.Recipe),
    ("`sources[]`", schema.SourceConfig),
    ("`teacher`, `student`, `judge`", schema.ModelConfig),
    ("`teacher.prices` (and the other models')", schema.PriceConfig),
    ("`embedder`", schema.EmbedderConfig),
    ("`stages[]`", schema.StageConfig),
    ("`export`", schema.ExportConfig),
    ("`budget`", schema.BudgetConfig),
)


def type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" if isinstance(a, str) else str(a) for a in typing.get_args(annotation))
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        inner = " \\| ".join(type_name(a) for a in args)
        return f"{inner} (optional)" if len(args) < len(typing.get_args(annotation)) else inner
    if origin in (list, tuple):
        args = typing.get_args(annotation)
        return f"list of {type_name(args[0])}" if args else "list"
    if origin is dict:
        k, v = typing.get_args(annotation)
        return f"mapping {type_name(k)} → {type_name(v)}"
    if isinstance(annotation, type):
        return {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}.get(
            annotation.__name__, annotation.__name__)
    return str(annotation)


def default_text(field: Any) -> str:
    if field.is_required():
        return "required"
    if field.default_factory is not None:
        value = field.default_factory()
    else:
        value = field.default
    if value is PydanticUndefined:
        return "required"
    if isinstance(value, BaseModel):
        return "see below"
    text = repr(value) if not isinstance(value, str) else (f'"{value}"' if len(value) < 40 else "(long text, below)")
    return f"`{text}`".replace("|", "\\|")


def field_rows(model: type[BaseModel]) -> list[str]:
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        key = field.alias or name
        desc = (field.description or "").replace("|", "\\|").replace("\n", " ")
        rows.append(f"| `{key}` | {type_name(field.annotation)} | {default_text(field)} | {desc} |")
    return rows


SCOPES = {"row": "row-wise (each output row from one input row)", "task": "per task (the rows of one task together)",
          "frame": "whole frame (needs every row)"}


def column_list(columns: Any) -> str:
    return ", ".join(f"`{c.name}`" + (f" (param `{c.param}`)" if c.param else "") for c in columns) or "nothing"


def render_wiring(cls: Any) -> list[str]:
    """What the stage reads and writes with its default params, and its scope."""
    params = cls.Params.model_construct()
    cols = cls.columns(params)
    reads = column_list(cols.reads)
    if cols.any_of:
        reads = (reads + "; " if cols.reads else "") + "any of " + column_list(cols.any_of)
    writes = column_list(cols.writes) + (" (its output replaces the frame: records only)" if cols.replaces else "")
    return [f"- reads: {reads}", f"- writes: {writes}", f"- scope: {SCOPES[cls.scope_for(params)]}", ""]


def render_stage(cls: Any) -> list[str]:
    out = [f"### `{cls.name}`", "", inspect.cleandoc(cls.__doc__ or "").replace("\n", " "), ""]
    facts = [f"version {cls.version}", f"method {cls.method}" if cls.method else "shared pipeline"]
    if cls.roles:
        facts.append("calls the " + " and ".join(cls.roles) + " model")
    if cls.sandbox:
        facts.append("runs programs in the sandbox")
    out += ["*" + "; ".join(facts) + "*", ""]
    out += render_wiring(cls)
    if cls.Params.model_fields:
        out += field_rows(cls.Params)
        out += long_defaults(cls.Params)
    else:
        out.append("No params.")
    return out + [""]


def long_defaults(model: type[BaseModel]) -> list[str]:
    """Long text defaults (prompt templates), written out in full below the table."""
    out = []
    for name, field in model.model_fields.items():
        if isinstance(field.default, str) and len(field.default) >= 40:
            out += ["", f"Default `{field.alias or name}`:", "", "````text", field.default.rstrip("\n"), "````"]
    return out


def render() -> str:
    from compiler.stages import load_all

    lines = [BEGIN, "", "## Reference: recipe fields", ""]
    for title, model in SECTIONS:
        lines += [f"### {title}", ""] + field_rows(model) + [""]
    lines += ["## Reference: stages", ""]
    for name in sorted(load_all()):
        lines += render_stage(load_all()[name])
    return "\n".join(lines) + END


def refresh(text: str) -> str:
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return head + render() + tail


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--write", action="store_true", help=f"rewrite {README}")
    args = p.parse_args(argv)
    text = README.read_text(encoding="utf-8")
    new = refresh(text)
    if args.write:
        README.write_text(new, encoding="utf-8")
    else:
        sys.stdout.write(render() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
