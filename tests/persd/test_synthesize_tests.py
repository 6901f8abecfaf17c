"""``synthesize_tests``: teacher-proposed inputs, reference-computed outputs, and the tasks it drops."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from compiler.runner import compile_recipe
from compiler.methods.persd.oracle import is_object_repr, parse_calls
from compiler.store import outputs
from compiler.store.db import Store
from compiler.store.versions import resolve
from evals.sandbox.types import TestSpec
from tests.persd.conftest import write_jsonl

TASKS = [
    {"task_id": "add", "instruction": "Add two numbers.",
     "reference_solution": "def add(a, b):\n    return a + b\n"},
    {"task_id": "noisy", "instruction": "Scale a random number.",
     "reference_solution": "import random\n\ndef noisy(n):\n    return random.random() * n\n"},
    {"task_id": "inv", "instruction": "Invert x.", "reference_solution": "def inv(x):\n    return 1 / x\n"},
    {"task_id": "make", "instruction": "Make a thing.",
     "reference_solution": "def make(n):\n    if n > 1:\n        return lambda: n\n    return n\n"},
    {"task_id": "shout", "instruction": "Print a greeting.",
     "reference_solution": "def shout(name):\n    print('hi', name)\n"},
    {"task_id": "nodef", "instruction": "Say hi.", "reference_solution": "print('hi')\n"},
    {"task_id": "silent", "instruction": "Return one.", "reference_solution": "def silent():\n    return 1\n"},
    {"task_id": "given", "instruction": "Square it.", "reference_solution": "def sq(x):\n    return x * x\n",
     "tests": [{"call": "sq(2)", "expected": "4"}]},
]
INPUTS = {
    "add": "1. add(1, 2)\n- add(-1, 1)\n`add(10, 5)`\nHere is another: add(0, 0)\nadd(2,\nnot a call\n"
           "add(1, 2)\nadd(3, 4)\nadd(7, 7)",
    "noisy": "noisy(1)\nnoisy(2)\nnoisy(3)",
    "inv": "inv(1)\ninv(0)\ninv(2)\ninv(4)",
    "make": "make(0)\nmake(1)\nmake(5)",
    "shout": "shout('ann')\nshout('bob')\nshout('cy')",
    "silent": "",
}


@pytest.fixture
def synthesized(tmp_path: Path, persd_recipe, teacher, store):
    tasks = write_jsonl(tmp_path / "tasks.jsonl", TASKS)
    teacher.script.inputs.clear()
    teacher.script.inputs.update(INPUTS)
    try:
        compile_recipe(persd_recipe([{"uses": "synthesize_tests"}], tasks=tasks, name="synth"), str(store))
    finally:
        teacher.script.inputs.clear()
    with Store.open_readonly(str(store)) as st:
        v = resolve(st, "synth")
        frame = outputs.load_output(st, v.fingerprint)
        drops = dict(st.con.execute("SELECT task_id, reason FROM rejections WHERE fingerprint = ?",
                                    [v.fingerprint]).fetchall())
        calls = st.con.execute("SELECT count(*) FROM llm_calls WHERE stage = 'synthesize_tests'").fetchall()[0][0]
    return frame, drops, calls


def spec_of(frame: pl.DataFrame, task_id: str) -> TestSpec:
    return TestSpec.from_json(frame.filter(pl.col("task_id") == task_id)["tests"][0])


def test_kept_tasks_and_their_origin(synthesized):
    frame, drops, calls = synthesized
    assert dict(zip(frame["task_id"], frame["tests_origin"])) == {
        "add": "synthesized", "inv": "synthesized", "shout": "synthesized", "given": "given"}
    assert drops == {"noisy": "nondeterministic_reference", "make": "too_few_tests", "nodef": "no_reference",
                     "silent": "too_few_tests"}
    assert calls == 6   # one request per task without tests and with a usable reference


def test_outputs_come_from_the_reference_and_the_first_is_seen(synthesized):
    frame, _, _ = synthesized
    add = spec_of(frame, "add")
    assert add.style == "io" and add.entry_point == "add"
    assert [(c.call, c.expected, c.visibility) for c in add.cases] == [
        ("add(1, 2)", "3", "seen"), ("add(-1, 1)", "0", "hidden"), ("add(10, 5)", "15", "hidden"),
        ("add(0, 0)", "0", "hidden"), ("add(3, 4)", "7", "hidden")]
    assert [c.expected for c in spec_of(frame, "shout").cases] == ["hi ann\n", "hi bob\n", "hi cy\n"]


def test_a_call_that_raises_is_left_out(synthesized):
    frame, _, _ = synthesized
    assert [(c.call, c.expected) for c in spec_of(frame, "inv").cases] == [
        ("inv(1)", "1.0"), ("inv(2)", "0.5"), ("inv(4)", "0.25")]


def test_given_tests_are_kept_as_they_are(synthesized):
    frame, _, _ = synthesized
    assert [(c.call, c.expected) for c in spec_of(frame, "given").cases] == [("sq(2)", "4")]


def test_parse_calls_slices_from_the_name_and_skips_junk():
    text = "Inputs:\n1) f(1)\n* result = f([1, 2])\nf(1)\nf(\ng(3)\n```\nf('a:b')"
    assert parse_calls(text, "f", 5) == ["f(1)", "f([1, 2])", "f('a:b')"]
    assert parse_calls(text, "f", 2) == ["f(1)", "f([1, 2])"]


def test_object_reprs_are_not_outputs():
    assert is_object_repr("<function f.<locals>.<lambda> at 0x7f00aa>")
    assert is_object_repr(None)
    assert not is_object_repr("[1, 2]") and not is_object_repr("<b>")
