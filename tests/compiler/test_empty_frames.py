"""Stages that need no model or sandbox cope with an empty input (every row dropped upstream)."""

from __future__ import annotations

import polars as pl
import pytest

from compiler.progress import progress_bar
from compiler.stages import load_all
from compiler.stages.base import TASK_SCHEMA

EXTRA = {"answer": pl.String, "code": pl.String, "exec_passed": pl.Boolean, "exec_status": pl.String,
         "exec_feedback": pl.String}


@pytest.mark.parametrize("name", ["extract_code", "filter", "format", "dedup"])
def test_empty_in_empty_out(name):
    cls = load_all()[name]
    frame = pl.DataFrame(schema={**TASK_SCHEMA, **EXTRA})
    ctx = type("Ctx", (), {"progress": staticmethod(lambda total, desc=None: progress_bar(total, desc or name))})()
    out = cls(cls.Params()).run(frame, ctx)
    assert out.frame.height == 0
    assert out.rejected is None or out.rejected.height == 0
