"""The five PERsD training sets, field for field: golden files (rewrite them with
``DISTILLC_UPDATE_GOLDEN=1``) and a structural comparison with the rows PERsD released."""

from __future__ import annotations

import json
import re
from typing import Any

import polars as pl
import pytest
import yaml

from compiler.runner import compile_recipe
from compiler.store import outputs
from compiler.store.db import Store
from compiler.store.versions import resolve
from evals.persd_prompts import REFINE_INSTRUCTION
from tests.persd.conftest import GOLDEN, LIMIT, PERSD_STAGES, RELEASED, models
from tests.persd.scripted import STARTER

VARIANT_FILES = {"StanD": "stand", "InpD": "inpd", "PERsD": "persd", "PERsD-refine": "persd_refine",
                 "PERsD-combined": "persd_combined"}
TEXT_TO_CODE = re.compile(r'^"""\n(?P<task>.+?)\n"""\n\n(?P<code>(?:.*\n)*?)(?P<header>def [^\n]+:\n)$', re.S)


@pytest.fixture(scope="module")
def records(tmp_path_factory, student, teacher) -> pl.DataFrame:
    tmp = tmp_path_factory.mktemp("golden")
    source = {"kind": "jsonl", "path": str(STARTER), "limit": LIMIT, "name": "starter"}
    recipe = {"name": "persd-golden", "sources": [source], **models(student.url, teacher.url),
              "stages": PERSD_STAGES}
    path = tmp / "persd-golden.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")
    store = tmp / "store.duckdb"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OPENAI_API_KEY", "test-key")
        mp.setenv("DISTILLC_PROGRESS", "0")
        compile_recipe(path, str(store))
    with Store.open_readonly(str(store)) as st:
        return outputs.load_output(st, resolve(st, "persd-golden").fingerprint)


def golden_rows(frame: pl.DataFrame, variant: str) -> list[dict[str, Any]]:
    rows = frame.filter(pl.col("variant") == variant).select("task_id", "prompt", "completion")
    return rows.to_dicts()


@pytest.mark.parametrize("variant", list(VARIANT_FILES))
def test_variant_matches_its_golden_file(records, variant, update_golden):
    path = GOLDEN / f"{VARIANT_FILES[variant]}.json"
    rows = golden_rows(records, variant)
    if update_golden:
        path.write_text(json.dumps(rows, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    assert rows == json.loads(path.read_text(encoding="utf-8"))


def released(name: str) -> list[dict[str, Any]]:
    path = RELEASED / f"{name}.head25.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def is_body(completion: str) -> bool:
    """A function body only: every non-blank line indented, and no ``def`` line of its own."""
    lines = [ln for ln in completion.replace("\r", "").split("\n") if ln.strip()]
    return bool(lines) and all(ln[0] in " \t" for ln in lines)


@pytest.mark.parametrize("name", ["finetuning_data_chatgpt_gold", "finetuning_data_chatgpt_newgold_rectification_only_"])
def test_text_to_code_records_have_the_released_structure(records, name):
    rows = released(name)
    assert all(TEXT_TO_CODE.match(r["finetuning_prompt"]) for r in rows)
    assert sum(is_body(r["finetuning_completion"]) for r in rows) >= len(rows) - 2   # released data is noisy
    ours = records.filter(pl.col("variant").is_in(["StanD", "InpD", "PERsD"]))
    for row in ours.iter_rows(named=True):
        match = TEXT_TO_CODE.match(row["prompt"])
        assert match, row["prompt"]
        assert is_body(row["completion"]) and not row["completion"].startswith("\n")


def skeleton(prompt: str) -> tuple[list[str], list[str]]:
    """The sections of a refinement prompt in order (instruction, TASK:, task, code, ERROR:, error,
    task, header) and the texts of its task blocks; trailing spaces and blank lines are ignored."""
    lines = [ln.rstrip() for ln in prompt.replace("\r", "").split("\n")]
    labels, tasks, i = [], [], 0
    steps = ("instruction", "TASK:", "task", "code", "ERROR:", "error", "task", "header")

    def skip_blank(i: int) -> int:
        while i < len(lines) and not lines[i]:
            i += 1
        return i

    for step in steps:
        i = skip_blank(i)
        if i >= len(lines):
            break
        if step in ("instruction", "TASK:", "ERROR:"):
            labels.append(step if step != "instruction" or lines[i].startswith("Rectify") else "?")
            i += 1
        elif step == "task":
            end = lines.index('"""', i + 1)
            tasks.append("\n".join(lines[i + 1:end]))
            labels.append(step)
            i = end + 1
        else:
            stop = {"code": "ERROR:", "error": '"""', "header": None}[step]
            end = lines.index(stop, i) if stop else len(lines)
            labels.append(step)
            i = end
    return labels, tasks


def test_refine_records_have_the_released_structure(records):
    expected = ["instruction", "TASK:", "task", "code", "ERROR:", "error", "task"]
    for row in released("finetuning_data_gold_rectification_nochatgpt"):
        labels, tasks = skeleton(row["finetuning_prompt"])
        assert labels[:7] == expected and tasks[0] == tasks[1]
    refine = records.filter(pl.col("variant") == "PERsD-refine")
    assert refine.height > 0
    for row in refine.iter_rows(named=True):
        labels, tasks = skeleton(row["prompt"])
        assert labels == expected + ["header"] and tasks[0] == tasks[1]
        assert row["prompt"].startswith(REFINE_INSTRUCTION) and row["prompt"].endswith(":\n")
        assert is_body(row["completion"])


def test_combined_is_refine_records_plus_gold_text_to_code(records):
    combined = records.filter(pl.col("variant") == "PERsD-combined")
    refine = records.filter(pl.col("variant") == "PERsD-refine")
    inpd = records.filter(pl.col("variant") == "InpD")
    pairs = lambda f: sorted(zip(f["prompt"], f["completion"]))  # noqa: E731
    assert pairs(combined) == sorted(pairs(refine) + pairs(inpd))


def test_persd_learns_the_refinement_and_inpd_the_gold(records):
    persd = records.filter(pl.col("variant") == "PERsD").sort("task_id")
    inpd = records.filter(pl.col("variant") == "InpD").sort("task_id")
    assert persd["prompt"].to_list() == inpd["prompt"].to_list()
    assert all(c.startswith("    # rectified\n") for c in persd["completion"])
    assert not any("# rectified" in c for c in inpd["completion"])
