"""Recipes load strictly; every error names the file, the line and the dotted path."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from compiler.errors import RecipeError
from compiler.recipe.loader import load_recipe

GOOD = """\
name: demo
sources:
  - kind: jsonl
    path: tasks.jsonl
teacher:
  model: smollm2-135m
stages:
  - uses: teacher_answer
    with:
      n: 2
  - uses: extract_code
  - uses: execute
  - uses: filter
  - uses: format
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "r.yaml"
    p.write_text(textwrap.dedent(text))
    return p


def error_of(tmp_path: Path, text: str) -> RecipeError:
    with pytest.raises(RecipeError) as info:
        load_recipe(write(tmp_path, text))
    return info.value


def test_good_recipe_loads_frozen(tmp_path):
    loaded = load_recipe(write(tmp_path, GOOD))
    assert loaded.recipe.name == "demo"
    assert [s.uses for s in loaded.recipe.stages] == ["teacher_answer", "extract_code", "execute", "filter", "format"]
    assert loaded.stage_params[0].n == 2
    with pytest.raises(Exception):
        loaded.recipe.name = "other"
    with pytest.raises(Exception):
        loaded.stage_params[0].n = 3


def test_unknown_key_gets_line_path_and_suggestion(tmp_path):
    err = error_of(tmp_path, GOOD.replace("    path: tasks.jsonl", "    pth: tasks.jsonl"))
    assert err.lineno == 4 and err.path == "sources[0].pth"
    assert "did you mean 'path'" in err.line()
    assert err.line().startswith(f"{tmp_path / 'r.yaml'}:4 sources[0].pth:")


def test_unknown_stage_param_gets_suggestion(tmp_path):
    err = error_of(tmp_path, GOOD.replace("      n: 2", "      temprature: 0.5"))
    assert err.path == "stages[0].with.temprature" and err.lineno == 10
    assert "did you mean 'temperature'" in err.line()


def test_wrong_type_names_expected_and_given(tmp_path):
    err = error_of(tmp_path, GOOD.replace("      n: 2", '      n: "many"'))
    assert err.path == "stages[0].with.n" and err.lineno == 10
    assert 'expected an integer, got "many"' in err.line()


def test_strings_are_not_coerced_to_numbers(tmp_path):
    err = error_of(tmp_path, GOOD.replace("      n: 2", '      n: "2"'))
    assert err.path == "stages[0].with.n"


def test_unknown_stage(tmp_path):
    err = error_of(tmp_path, GOOD.replace("uses: extract_code", "uses: extract_cod"))
    assert err.path == "stages[1].uses" and err.lineno == 11
    assert "did you mean 'extract_code'" in err.line()


def test_yaml_syntax_error_has_line(tmp_path):
    err = error_of(tmp_path, GOOD.replace("    with:\n      n: 2", "    with: {n: 2"))
    assert "YAML syntax error" in err.line() and err.lineno is not None


def test_missing_required_key(tmp_path):
    err = error_of(tmp_path, GOOD.replace("name: demo\n", ""))
    assert err.path == "name" and "required" in err.line()


def test_missing_file(tmp_path):
    with pytest.raises(RecipeError, match="recipe file not found"):
        load_recipe(tmp_path / "nope.yaml")


def test_stage_needing_a_model_without_one(tmp_path):
    err = error_of(tmp_path, GOOD.replace("teacher:\n  model: smollm2-135m\n", ""))
    assert err.path == "stages[0]" and "no `teacher:` section" in err.line()


def test_duplicate_stage_names_and_budget_for_unknown_stage(tmp_path):
    err = error_of(tmp_path, GOOD + "  - uses: format\n")
    assert "two stages are named 'format'" in err.line()
    err = error_of(tmp_path, GOOD + "budget:\n  stages:\n    teacher_anser: 1.0\n")
    assert err.path == "budget.stages.teacher_anser"
    assert err.line().endswith(":17 budget.stages.teacher_anser: budget for unknown stage 'teacher_anser' "
                               "(did you mean 'teacher_answer'?)")
    err = error_of(tmp_path, GOOD + "budget:\n  stages:\n    judge: 1.0\n")
    assert err.line().endswith("(stages: teacher_answer, extract_code, execute, filter, format)")


def test_duplicate_yaml_key(tmp_path):
    err = error_of(tmp_path, GOOD.replace("name: demo\n", "name: demo\nname: again\n"))
    assert "duplicate key 'name'" in err.line() and err.lineno == 2


def test_nested_model_error(tmp_path):
    err = error_of(tmp_path, GOOD.replace("  model: smollm2-135m", "  model: smollm2-135m\n  backend: llamacpp"))
    assert err.path == "teacher.backend" and err.lineno == 7
    assert "expected one of" in err.line()
