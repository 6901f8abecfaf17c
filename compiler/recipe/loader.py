"""Strict recipe loading: YAML → frozen :class:`Recipe`, with every error naming the file, the line
and the dotted path (``recipes/x.yaml:14 stages[2].with.min_pass_rate: expected a number, got "high"``)
and a "did you mean" for unknown keys."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from compiler.errors import RecipeError
from compiler.recipe.schema import Recipe

Loc = tuple[Any, ...]


@dataclass(frozen=True)
class LoadedRecipe:
    recipe: Recipe
    path: Path
    text: str                      # the file as written
    lines: dict[Loc, int]          # dotted location -> 1-based line
    stage_params: tuple[BaseModel, ...]  # validated params of each stage, in order
    shown: str = ""                # the path as the user gave it (for messages)

    def error(self, message: str, loc: Loc) -> RecipeError:
        """A :class:`RecipeError` located at ``loc`` in this recipe."""
        return RecipeError(message, file=self.shown or str(self.path), line=_line(self.lines, loc), path=_dotted(loc))

    @property
    def base_dir(self) -> Path:
        return self.path.parent


def load_recipe(path: str | Path) -> LoadedRecipe:
    path = Path(path)
    shown = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecipeError("recipe file not found", file=shown) from None
    except OSError as exc:
        raise RecipeError(f"cannot read recipe ({exc.strerror})", file=shown) from None
    data, lines = parse_yaml(text, shown)
    recipe = _validate(Recipe, data, shown, lines, ())
    params = tuple(_stage_params(recipe, shown, lines))
    _check_names(recipe, shown, lines)
    loaded = LoadedRecipe(recipe, path.resolve(), text, lines, params, shown)
    from compiler.wiring import check_wiring

    check_wiring(loaded)      # every column read is written earlier: before any call or write
    return loaded


# -- YAML with line numbers --------------------------------------------------------------------

def parse_yaml(text: str, shown: str) -> tuple[Any, dict[Loc, int]]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RecipeError(f"YAML syntax error: {problem}", file=shown, line=line) from None
    if node is None:
        raise RecipeError("recipe is empty", file=shown, line=1)
    lines: dict[Loc, int] = {}
    data = _construct(node, (), lines, shown)
    if not isinstance(data, dict):
        raise RecipeError("a recipe is a mapping of keys (name, sources, stages, ...)", file=shown,
                          line=node.start_mark.line + 1)
    return data, lines


def _construct(node: yaml.Node, loc: Loc, lines: dict[Loc, int], shown: str) -> Any:
    lines[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            if key in out:
                raise RecipeError(f"duplicate key {key!r}", file=shown, line=key_node.start_mark.line + 1,
                                  path=_dotted(loc + (key,)))
            out[key] = _construct(value_node, loc + (key,), lines, shown)
            lines[loc + (key,)] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(n, loc + (i,), lines, shown) for i, n in enumerate(node.value)]
    return yaml.SafeLoader("").construct_object(node, deep=True)


# -- validation ----------------------------------------------------------------------------------

def _validate(model: type[BaseModel], data: Any, shown: str, lines: dict[Loc, int], prefix: Loc) -> Any:
    try:
        return model.model_validate(data, strict=True)
    except ValidationError as exc:
        errors = exc.errors()  # an unknown key explains a "missing" one (a misspelt section): report it first
        err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
        loc = prefix + tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        raise RecipeError(_message(err, model, prefix), file=shown, line=_line(lines, loc),
                          path=_dotted(loc)) from None


def _message(err: dict[str, Any], model: type[BaseModel], prefix: Loc) -> str:
    kind, loc, given = err["type"], err["loc"], err.get("input")
    if kind == "extra_forbidden":
        key = loc[-1]
        allowed = _allowed_keys(model, loc[:-1])
        hint = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
        tail = f" (did you mean {hint[0]!r}?)" if hint else (f" (allowed: {', '.join(allowed)})" if allowed else "")
        return f"unknown key {key!r}{tail}"
    if kind == "missing":
        return "required key is missing"
    expected = {
        "float_type": "a number", "float_parsing": "a number", "int_type": "an integer",
        "int_parsing": "an integer", "int_from_float": "an integer", "string_type": "a string",
        "bool_type": "true or false", "bool_parsing": "true or false", "list_type": "a list",
        "dict_type": "a mapping", "model_type": "a mapping", "model_attributes_type": "a mapping",
    }.get(kind)
    if expected:
        return f"expected {expected}, got {_show(given)}"
    if kind == "literal_error":
        return f"expected one of {err['ctx']['expected']}, got {_show(given)}"
    msg = err["msg"]
    return msg[len("Value error, "):] if msg.startswith("Value error, ") else msg


def _show(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _allowed_keys(model: type[BaseModel], loc: Loc) -> list[str]:
    """The field names accepted at ``loc`` inside ``model`` (following nested models and lists)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        fields = getattr(current, "model_fields", None)
        if not fields:
            return []
        name = next((n for n, f in fields.items() if n == part or f.alias == part), None)
        if name is None:
            return []
        current = _inner_model(fields[name].annotation)
    fields = getattr(current, "model_fields", {}) or {}
    return [f.alias or n for n, f in fields.items()]


def _inner_model(annotation: Any) -> Any:
    import typing
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _line(lines: dict[Loc, int], loc: Loc) -> int | None:
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


def _dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _stage_params(recipe: Recipe, shown: str, lines: dict[Loc, int]) -> list[BaseModel]:
    from compiler.stages import load_all

    registry = load_all()
    params = []
    for i, stage in enumerate(recipe.stages):
        cls = registry.get(stage.uses)
        if cls is None:
            hint = difflib.get_close_matches(stage.uses, sorted(registry), n=1, cutoff=0.5)
            tail = f" (did you mean {hint[0]!r}?)" if hint else f" (known: {', '.join(sorted(registry))})"
            raise RecipeError(f"unknown stage {stage.uses!r}{tail}", file=shown,
                              line=_line(lines, ("stages", i, "uses")), path=f"stages[{i}].uses")
        params.append(_validate(cls.Params, dict(stage.with_), shown, lines, ("stages", i, "with")))
        for role in cls.roles:
            if recipe.model_for(role) is None:
                raise RecipeError(f"stage {stage.uses!r} calls the {role} model, but the recipe has no "
                                  f"`{role}:` section", file=shown, line=_line(lines, ("stages", i)),
                                  path=f"stages[{i}]")
    return params


def _check_names(recipe: Recipe, shown: str, lines: dict[Loc, int]) -> None:
    seen: dict[str, int] = {}
    for i, stage in enumerate(recipe.stages):
        if stage.label in seen:
            raise RecipeError(f"two stages are named {stage.label!r} (give one a `name:`)", file=shown,
                              line=_line(lines, ("stages", i)), path=f"stages[{i}]")
        seen[stage.label] = i
    for name in recipe.budget.stages:
        if name not in seen:
            hint = difflib.get_close_matches(name, sorted(seen), n=1, cutoff=0.5)
            tail = f" (did you mean {hint[0]!r}?)" if hint else f" (stages: {', '.join(seen)})"
            raise RecipeError(f"budget for unknown stage {name!r}{tail}", file=shown,
                              line=_line(lines, ("budget", "stages", name)), path=f"budget.stages.{name}")
