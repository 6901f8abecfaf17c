"""Sources → dedup → decontaminate through the real compiler, into a DuckDB store."""

from __future__ import annotations

from pathlib import Path

import duckdb
import yaml

from compiler.runner import compile_recipe
from evals.problems import load_problems
from tests.data.conftest import SANITIZED_MBPP, write_jsonl


def test_compile_drops_duplicates_and_contamination_with_reasons(tmp_path: Path):
    he = load_problems("humaneval", limit=13)[12]
    write_jsonl(tmp_path / "tasks.jsonl", [
        {"task_id": "keep", "instruction": "Return the product of two numbers.",
         "reference_solution": "def mul(a, b):\n    return a * b\n"},
        {"task_id": "copy", "instruction": "Return the product of two numbers.",
         "reference_solution": "def mul(a, b):\n    return a * b\n"},
        {"task_id": "leak", "instruction": "Pick the longest string.", "reference_solution": he.reference},
    ])
    recipe = {"name": "clean", "sources": [{"kind": "jsonl", "path": "tasks.jsonl"}],
              "stages": [{"uses": "dedup", "with": {"columns": ["instruction", "reference_solution"]}},
                         {"uses": "decontaminate", "with": {"mbpp_path": str(SANITIZED_MBPP)}}]}
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    store = tmp_path / "store.duckdb"
    result = compile_recipe(tmp_path / "recipe.yaml", str(store))
    assert result.version.rows == 1
    con = duckdb.connect(str(store), read_only=True)
    rows = con.execute("SELECT task_id, reason, detail FROM rejections ORDER BY task_id").fetchall()
    con.close()
    assert [(t, r) for t, r, _ in rows] == [("copy", "duplicate"), ("leak", "contaminated")]
    assert "(task keep)" in rows[0][2] and rows[1][2].startswith("humaneval:HumanEval/12 ")
