"""Every recipe in ``recipes/`` is planned as shipped, and compiled on a few tasks with every model
served by a scripted loopback endpoint, so a recipe can never ship broken.

For the compile, the recipe is copied with only what needs the network or a GPU swapped out: Hub
sources become local files of the same layout (MBPP: the sanitized copy beside the project; Code
Alpaca: rows of the same shape), every model becomes the same model name on a loopback
OpenAI-compatible server, and MBPP and MBPP+ decontamination read the local copies. Stages and their params stay
as written, except that ``self_instruct`` writes at most twice as many instructions as there are tasks
and a stage's local ``library`` file is read from the recipe's directory.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from compiler.plan import make_plan
from compiler.recipe.loader import load_recipe
from compiler.stages.sources import load_sources
from tests.compiler.conftest import ROOT, run_cli, starter_tasks
from tests.engine.responders import responders
from tests.loopback import LoopbackServer

RECIPES = sorted((ROOT / "recipes").glob("*.yaml"))
SHARED = ROOT.parent / "shared" / "data"
MBPP = SHARED / "sanitized-mbpp.json"
MBPP_PLUS = SHARED / "MbppPlus.jsonl.gz"
TASKS = 5


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_every_shipped_recipe_plans(path):
    r = run_cli("plan", path, "--store", "/nonexistent/store.duckdb", "--json")
    assert r.code == 0, r.err
    assert r.json()["stages"][-1]["name"] == load_recipe(path).recipe.stages[-1].label


def alpaca_rows() -> list[dict[str, Any]]:
    """Code Alpaca's layout (instruction, input, output) for a few starter tasks."""
    return [{"instruction": t["instruction"], "input": "", "output": t["reference_solution"]}
            for t in starter_tasks(TASKS)]


def localise(source: dict[str, Any], recipe_dir: Path, tmp: Path) -> dict[str, Any]:
    source = {**source, "limit": TASKS}
    if source["kind"] == "mbpp":
        return {**source, "path": str(MBPP), "config": None}
    if source["kind"] == "hub":
        path = tmp / f"{source.get('name') or 'hub'}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in alpaca_rows()))
        return {k: v for k, v in source.items() if k not in ("dataset", "split", "config", "revision")} | {
            "kind": "jsonl", "path": str(path)}
    if source.get("path"):
        return {**source, "path": str((recipe_dir / source["path"]).resolve())}
    return source


def offline_copy(path: Path, url: str, tmp: Path) -> Path:
    data = yaml.safe_load(path.read_text())
    data["sources"] = [{k: v for k, v in localise(s, path.parent, tmp).items() if v is not None}
                       for s in data["sources"]]
    for role in ("teacher", "student", "judge"):
        if role in data:
            data[role] = {"backend": "openai", "model": data[role]["model"], "base_url": url}
    for stage in data["stages"]:
        if stage["uses"] == "self_instruct":                   # as many new instructions as seed tasks, at most
            stage["with"] = {**stage.get("with", {}), "n": min(stage.get("with", {}).get("n", 100), 2 * TASKS)}
        if "library" in stage.get("with", {}):                # a stage's own local file, like a source's
            stage["with"] = {**stage["with"], "library": str((path.parent / stage["with"]["library"]).resolve())}
        if stage["uses"] in ("decontaminate", "decontaminate_embed"):
            stage["with"] = {**stage.get("with", {}), "mbpp_path": str(MBPP), "mbpp_plus_path": str(MBPP_PLUS)}
        elif isinstance(stage.get("with", {}).get("decontaminate"), dict):     # a stage's own benchmark check
            stage["with"]["decontaminate"] = {**stage["with"]["decontaminate"], "mbpp_path": str(MBPP)}
    out = tmp / path.name
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out


class ScriptedModel:
    """One endpoint for every role: finds the task in the request by its instruction and answers as
    the request asks (test inputs, a direct answer, a refinement, a student's attempt). The student
    gets every other task wrong, so refinements happen."""

    def __init__(self, tasks: list[dict[str, Any]]):
        self.tasks = sorted(tasks, key=lambda t: -len(t["instruction"]))
        self.wrong = {t["task_id"] for i, t in enumerate(tasks) if i % 2}
        self.responders = responders()

    def __call__(self, body: dict[str, Any]) -> str:
        for respond in self.responders:       # a method's own prompts first (tests/engine/responders/)
            answer = respond(body, self.tasks)
            if answer is not None:
                return answer
        text = body.get("prompt") or body["messages"][-1]["content"]
        whole = text if "prompt" in body else "\n".join(m["content"] for m in body["messages"])
        task = next(t for t in self.tasks if t["instruction"].strip() in whole)
        code = task["reference_solution"].rstrip() + "\n"
        if "EXAMPLE INPUTS:" in text:
            return "\n".join(calls_of(task))
        if "RECTIFIED CODE" in text:
            return f"FEEDBACK: it was wrong.\n\nRECTIFIED CODE:\n```python\n{code}```"
        if "prompt" in body or "Complete the following Python function" in text:   # the student
            wrong = task["task_id"] in self.wrong
            if "prompt" in body:
                return "    return None\n" if wrong else body_of(code, task["entry_point"])
            return f"```python\n{wrong_version(code) if wrong else code}```"
        return f"Here is a solution.\n\n```python\n{code}```"


def calls_of(task: dict[str, Any]) -> list[str]:
    starter = {t["instruction"]: t for t in starter_tasks()}
    found = starter.get(task["instruction"])
    return [c["call"] for c in found["tests"]["cases"]] if found else []


def body_of(code: str, entry_point: str) -> str:
    from compiler.codeparse import split_function

    parts = split_function(code, entry_point)
    return parts.body if parts else code


def wrong_version(code: str) -> str:
    return re.sub(r"(def [^\n]*:\n)", r"\1    return None\n", code, count=1)


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_every_shipped_recipe_compiles_on_scripted_models(path, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    monkeypatch.setenv("DISTILLC_PROGRESS", "0")
    with LoopbackServer() as server:
        recipe = offline_copy(path, server.url, tmp_path)
        loaded = load_recipe(recipe)
        server.answer = ScriptedModel(load_sources(loaded.recipe, loaded.base_dir).to_dicts())
        make_plan(loaded)
        store = tmp_path / "store.duckdb"
        r = run_cli("compile", recipe, "--store", store, "--json")
        assert r.code == 0, r.err
        out = r.json()
        assert out["rows"] > 0 and out["llm_calls"] == server.tally.answered > 0
        shown = run_cli("show", out["corpus"], "--store", store, "--json").json()
        uses = {s.uses for s in loaded.recipe.stages}
        if "emit_persd" in uses:
            assert shown["persd"]["refinements_requested"] > 0 and shown["variants"]["PERsD"] > 0
        if "emit_soda" in uses:
            assert shown["soda"]["cycles"][0]["pairs_kept"] > 0 and shown["variants"]["SODA"] > 0
        if "emit_akd" in uses:
            assert shown["akd"]["kept"]["AKD"] > 0 and not shown["akd"]["dropped"].get("syntax_error")
        exported = run_cli("export", out["corpus"], tmp_path / "out", "--store", store, "--format", "jsonl")
        assert exported.code == 0, exported.err
