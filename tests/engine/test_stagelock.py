"""A stage's version must move with the code behind it: ``compiler/stage_versions.json`` records each
stage's version and a hash of its behaviour-defining code, and this test fails when the code changes
and the version does not (the change would let old stores serve outputs of the old code)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from compiler import stagelock
from compiler.stages import load_all

EXTRACT = Path(stagelock.__file__).parent / "stages" / "extract.py"


def test_the_table_matches_every_stage_and_its_code():
    problems = stagelock.problems(stagelock.current(), stagelock.read_lock())
    assert problems == [], "\n".join(problems)


def load_copy(tmp_path: Path, source: str, name: str):
    """``source`` (a stage module, registration removed) imported as a module of its own."""
    path = tmp_path / f"{name}.py"
    path.write_text(source.replace("@register\n", ""))
    spec = importlib.util.spec_from_file_location(f"compiler.stages.{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(spec.name, None)
        sys.modules[spec.name] = module      # inspect.getsource needs it while hashing
    return module


def entry(module, cls_name: str) -> dict:
    cls = getattr(module, cls_name)
    return {"version": cls.version, "source": stagelock.source_hash(cls)}


@pytest.fixture
def lock() -> dict:
    return stagelock.read_lock()


def test_an_unchanged_copy_hashes_the_same(tmp_path, lock):
    copy = load_copy(tmp_path, EXTRACT.read_text(), "extract_same")
    assert entry(copy, "ExtractCode") == lock["extract_code"]


def test_changed_code_without_a_version_bump_fails(tmp_path, lock):
    source = EXTRACT.read_text()
    changed = source.replace('default="auto", description="which fenced block to take"',
                             'default="last", description="which fenced block to take"')
    assert changed != source
    copy = load_copy(tmp_path, changed, "extract_changed")
    now = {**stagelock.current(), "extract_code": entry(copy, "ExtractCode")}
    problems = stagelock.problems(now, lock)
    assert len(problems) == 1 and "'extract_code': its code changed but its version is still 1" in problems[0]
    assert stagelock.write(now, lock, accept=set(), path=tmp_path / "lock.json") == problems   # refused
    assert not (tmp_path / "lock.json").exists()


def test_a_change_in_a_helper_it_calls_counts_too(tmp_path, lock):
    source = EXTRACT.read_text().replace(
        "from compiler.codeparse import extract_code, strip_main_guard",
        "from compiler.codeparse import strip_main_guard\n\n\n"
        "def extract_code(text, entry_point=None, how='auto'):\n    return text\n")
    copy = load_copy(tmp_path, source, "extract_helper")
    assert entry(copy, "ExtractCode")["source"] != lock["extract_code"]["source"]


def test_comments_docstrings_and_param_descriptions_do_not_count(tmp_path, lock):
    source = EXTRACT.read_text().replace('description="which fenced block to take"',
                                         'description="the fenced block to take"')
    source = source.replace('    name = "extract_code"', '    # a comment\n    name = "extract_code"')
    copy = load_copy(tmp_path, source.replace("Takes the code out", "Pulls the code out"), "extract_docs")
    assert entry(copy, "ExtractCode") == lock["extract_code"]


def test_a_bumped_version_must_be_recorded_and_then_passes(tmp_path, lock):
    changed = EXTRACT.read_text().replace('default="auto", description="which fenced block to take"',
                                          'default="last", description="which fenced block to take"')
    copy = load_copy(tmp_path, changed.replace('    version = 1\n', '    version = 2\n', 1), "extract_bumped")
    now = {**stagelock.current(), "extract_code": entry(copy, "ExtractCode")}
    assert ["version 2 is not recorded yet" in p for p in stagelock.problems(now, lock)] == [True]
    assert stagelock.write(now, lock, accept=set(), path=tmp_path / "lock.json") == []
    assert stagelock.problems(now, stagelock.read_lock(tmp_path / "lock.json")) == []


def test_every_registered_stage_and_the_sources_are_in_the_table(lock):
    assert set(lock) == set(load_all()) | {"sources"}
