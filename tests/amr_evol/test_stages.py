"""The instruction stages (levels, parents, rejected answers), the AnsRepair baseline (teacher tests
run in the sandbox, failing answers repaired), the self-test gate and the teacher-written seed modules
(only isolated functions passing their own asserts are stored) on a scripted loopback teacher."""

from __future__ import annotations

import re

from compiler.store import outputs
from compiler.store.db import Store
from compiler.store.versions import resolve
from tests.compiler.conftest import STARTER, run_cli, starter_tasks
from tests.loopback import LoopbackServer

TASKS = starter_tasks(4)
HEAD = """\
name: {name}
sources:
  - kind: jsonl
    path: {tasks}
    limit: 4
teacher:
  backend: openai
  model: gpt-4o-mini
  base_url: {url}
stages:
"""


def task_in(text: str) -> dict:
    return next(t for t in TASKS if t["instruction"] in text)


def teacher(body: dict) -> str:
    user = body["messages"][-1]["content"]
    if user.rstrip().endswith("New task:"):
        first = re.search(r"Task 1: (.*)", user).group(1)
        return "New task: too short" if "square" in first else f"New task: {first} Also explain nothing."
    if user.rstrip().endswith("Harder question:"):
        return user.split("Question:\n", 1)[1].rsplit("\n\nHarder question:", 1)[0] + " Be fast."
    task = task_in(user)
    code = task["reference_solution"]
    if user.rstrip().endswith("Test:"):
        asserts = "".join(f"    assert str({c['call']}) == {c['expected']!r}\n" for c in task["tests"]["cases"])
        return f"```python\ndef test_solution():\n{asserts}```"
    if "Wrong Solution:" in user or user.rstrip().endswith("Correct Solution:") and "(none)" not in user:
        return f"Fixed.\n\n```python\n{code}```"
    if TASKS.index(task) % 2 == 1:                                       # every other answer is wrong
        code = re.sub(r"(def [^\n]*:\n)", r"\1    return None\n", code, count=1)
    return f"```python\n{code}```"


def compile_recipe(tmp_path, name, stages, server):
    path = tmp_path / f"{name}.yaml"
    path.write_text(HEAD.format(name=name, tasks=STARTER, url=server.url) + stages)
    r = run_cli("compile", path, "--store", tmp_path / "s.duckdb", "--json")
    assert r.code == 0, r.err
    return r.json()


def frames(tmp_path, name):
    with Store.open_readonly(str(tmp_path / "s.duckdb")) as store:
        v = resolve(store, name)
        out = {s["uses"]: outputs.load_output(store, s["fingerprint"]) for s in v.stages}
        drops = {s["uses"]: outputs.rejection_counts(store, s["fingerprint"]) for s in v.stages}
    return out, drops


def test_instructions_keep_parents_and_levels(tmp_path):
    with LoopbackServer(answer=teacher) as server:
        compile_recipe(tmp_path, "instr", "  - uses: self_instruct\n    with: {n: 6, few_shot: 2}\n"
                       "  - uses: evol_instruct\n    with: {levels: 2, keep: last}\n", server)
    out, drops = frames(tmp_path, "instr")
    si, evol = out["self_instruct"], out["evol_instruct"]
    assert drops["self_instruct"].get("bad_instruction", 0) == 6 - si.height > 0
    assert set(si["level"]) == {"self_instruct"} and set(evol["level"]) == {"complex2"}
    assert evol.height == si.height and all(i.endswith("Be fast. Be fast.") for i in evol["instruction"])
    seeds = set(out["sources"]["row_id"])
    assert all(set(p) <= seeds and len(p) == 2 for p in si["parent_ids"])
    assert not set(evol["parent_task_id"]) & set(si["task_id"])        # level 2's parents are level-1 rows
    assert all(t.startswith("evol-") for t in evol["parent_task_id"])


def test_ansrepair_repairs_only_answers_whose_teacher_tests_fail(tmp_path):
    with LoopbackServer(answer=teacher) as server:
        result = compile_recipe(tmp_path, "repair", "  - uses: teacher_answer\n  - uses: extract_code\n"
                                "  - uses: teacher_tests\n  - uses: repair_answer\n  - uses: format\n"
                                "    with: {completion: answer, answer: repaired_answer, variant: AnsRepair}\n", server)
    out, _ = frames(tmp_path, "repair")
    tested = out["teacher_tests"]
    assert tested["repair_test_passed"].to_list() == [True, False, True, False]
    repaired = out["repair_answer"]
    assert repaired["repaired"].to_list() == [False, True, False, True]
    assert all(t["reference_solution"].strip() in a for t, a in zip(TASKS, repaired["repaired_answer"]))
    fixed = repaired.filter(repaired["repaired"])
    assert set(fixed["parent_ids"].list.first()) == set(tested.filter(~tested["repair_test_passed"])["row_id"])
    assert result["llm_calls"] == 4 + 4 + 2 and result["rows"] == 4       # answers, tests, two repairs


def test_the_self_test_gate_labels_and_keeps_every_answer(tmp_path):
    with LoopbackServer(answer=teacher) as server:
        compile_recipe(tmp_path, "gate", "  - uses: evolve_response\n    with: {use_modules: false, include_specs: false, "
                       "self_test: true}\n", server)
    out, drops = frames(tmp_path, "gate")
    evolved = out["evolve_response"]
    assert evolved.height == 4 and drops["evolve_response"] == {}
    assert evolved["self_test_passed"].to_list() == [True, False, True, False]
    assert set(evolved["self_test_status"]) == {"passed", "failed"}


SEED_ANSWER = '''Building blocks:

```python
def clamp(x: int, lo: int, hi: int) -> int:
    """Limit x to the range [lo, hi]."""
    return max(lo, min(x, hi))

assert clamp(5, 0, 3) == 3
assert clamp(-1, 0, 3) == 0
assert clamp(2, 0, 3) == 2
```

```python
def halve(x: int) -> int:
    """Half of x, rounded down."""
    return x // 2

assert halve(4) == 2
assert halve(5) == 3
assert halve(0) == 0
```

```python
def double(x: int) -> int:
    """Twice x."""
    return 2 * x

assert double(2) == 4
```

```python
def scaled(x: int) -> int:
    """x times the global factor."""
    return x * FACTOR

assert scaled(1) == 1
assert scaled(2) == 2
assert scaled(3) == 3
```'''


def seed_teacher(body: dict) -> str:
    user = body["messages"][-1]["content"]
    assert "useful building blocks" in user and task_in(user)
    return SEED_ANSWER


def test_seed_modules_stores_only_isolated_functions_that_pass_their_own_tests(tmp_path):
    with LoopbackServer(answer=seed_teacher) as server:
        result = compile_recipe(tmp_path, "seed", "  - uses: seed_modules\n    with: {tasks: 2, functions: 4}\n", server)
    assert result["llm_calls"] == 2 and result["rows"] == 4              # the rows pass through
    store = tmp_path / "s.duckdb"
    listed = run_cli("modules", "ls", "--store", store, "--json").json()
    assert [(m["name"], m["origin"], m["verified"]) for m in listed["modules"]] == [("clamp", "seed", True)]
    out, drops = frames(tmp_path, "seed")
    assert drops["seed_modules"] == {"module_failed_tests": 1, "module_too_few_tests": 2, "module_not_isolated": 2}
    with Store.open_readonly(str(store)) as st:
        details = dict(st.con.execute("SELECT reason, detail FROM rejections WHERE reason = 'module_failed_tests'")
                       .fetchall())
    assert details["module_failed_tests"].startswith("halve: failed")
    shown = run_cli("show", "seed", "--store", store, "--json").json()["amr_evol"]["database"]
    assert (shown["before"], shown["seeded"], shown["after"]) == (0, 1, 1)
