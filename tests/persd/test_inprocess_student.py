"""A student served in process (``transformers`` backend, a tiny random base model) with PERsD's
raw completion prompt: every attempt is a cleaned program, and the teacher is asked about exactly
the attempts that failed."""

from __future__ import annotations

import polars as pl

from compiler.runner import compile_recipe
from compiler.store import outputs
from compiler.store.db import Store
from compiler.store.versions import resolve
from tests.persd.conftest import PERSD_STAGES

LIMIT = 6


def test_tiny_base_student_with_completion_prompts(persd_recipe, store, teacher, tiny_base_model_dir):
    stages = [s if s["uses"] != "student_attempt" else {**s, "with": {"max_tokens": 12, "n": 2}}
              for s in PERSD_STAGES]
    recipe = persd_recipe(stages, limit=LIMIT,
                          student={"backend": "transformers", "model": str(tiny_base_model_dir), "batch_size": 4})
    compile_recipe(recipe, str(store))
    with Store.open_readonly(str(store)) as st:
        v = resolve(st, "persd-test")
        fp = {s["name"]: s["fingerprint"] for s in v.stages}
        attempts = outputs.load_output(st, fp["execute_attempt"])
        refine_calls = st.con.execute("SELECT count(*) FROM llm_calls WHERE stage = 'teacher_refine'").fetchall()[0][0]
        student_calls = st.con.execute("SELECT count(*), min(backend) FROM llm_calls WHERE role = 'student'").fetchall()[0]
    assert attempts.height == 2 * LIMIT and student_calls == (2 * LIMIT, "transformers")
    assert all(code.startswith(f"def {ep}(") for code, ep in zip(attempts["attempt_code"], attempts["entry_point"]))
    assert attempts["attempt_prompt"].str.starts_with('"""\n').all()
    assert refine_calls == attempts.filter(~pl.col("attempt_passed")).height
