"""The judge's answers: both shapes parsed, half points kept, totals exact; a judgement missing a rule,
out of range or in no known shape is a rejection row ``judge_unparsed`` with the raw text, never a 0."""

from __future__ import annotations

import pytest

from compiler.methods.soda.parse import Unparsed, created_instruction, error_types_named, parse_judgement
from compiler.store import outputs
from compiler.store.db import Store
from compiler.store.versions import resolve
from tests.compiler.conftest import file_digest, run_cli
from tests.soda.conftest import stages

RULES = """Code Analysis: Rule 1 is met: the function works. Rule 2: it misses the empty list.
Score:
Rule 1. Basic Functionality: 2
Rule 2. Boundary Check: 0.5
Rule 3. Requirement Coverage: 1
Rule 4. Readability & Documentation: 0.5
Rule 5. Coding Practices: 0"""

PARSED = [
    (RULES, 4.0, (2.0, 0.5, 1.0, 0.5, 0.0), "rules"),
    # markdown emphasis, "points", a total line after the rules, the rules on one line
    ("Score:\n**Rule 1. Basic Functionality:** 1.5 points\n- Rule 2 (Boundary Check): 1\nRule 3. Requirement "
     "Coverage: 0.5/1\nRule 4. Readability & Documentation: 1\nRule 5. Coding Practices: 0.5\nTotal score: 4.5",
     4.5, (1.5, 1.0, 0.5, 1.0, 0.5), "rules"),
    ("Score: Rule 1. Basic Functionality: 0.5, Rule 2. Boundary Check: 0.5, Rule 3. Requirement Coverage: 0.5, "
     "Rule 4. Readability & Documentation: 0.5, Rule 5. Coding Practices: 0.5", 2.5, (0.5,) * 5, "rules"),
    ('{"score": 3.5, "justification": "covers most requirements"}', 3.5, None, "json"),
    ('Here you go:\n```json\n{"score": "5", "justification": "uses {braces} in text"}\n```', 5.0, None, "json"),
    ('{"score": 0, "justification": "does not run"}', 0.0, None, "json"),
]

UNPARSED = [
    (RULES.replace("Rule 3. Requirement Coverage: 1\n", ""), "rule 3 missing"),
    ("Score:\nRule 1. Basic Functionality: 2", "rules 2, 3, 4, 5 missing"),
    (RULES.replace("Basic Functionality: 2", "Basic Functionality: 3"), "rule 1 scored 3, above its 2 points"),
    ("Score: 4", "neither"),
    ("Total: 5/6, a fine solution.", "neither"),
    ('{"score": 7.5, "justification": "great"}', "outside 0-6"),
    ('{"score": "high"}', "not a number"),
    ('{"rating": 4}', "neither"),
    ("", "neither"),
    ("I cannot grade this code.", "neither"),
]


@pytest.mark.parametrize("text,total,rules,shape", PARSED)
def test_both_shapes_and_half_points(text, total, rules, shape):
    judged = parse_judgement(text)
    assert (judged.total, judged.rules, judged.shape) == (total, rules, shape)


def test_totals_are_exact_sums():
    text = RULES.replace(": 0.5", ": 0.1").replace("Coding Practices: 0", "Coding Practices: 0.2")
    assert parse_judgement(text).total == 3.4          # 2 + 0.1 + 1 + 0.1 + 0.2, not 3.4000000000000004


@pytest.mark.parametrize("text,why", UNPARSED)
def test_anything_else_is_unparsed_never_zero(text, why):
    with pytest.raises(Unparsed, match=why):
        parse_judgement(text)


def test_error_types_and_created_instructions():
    assert error_types_named("Error types: Logic error, timeout error") == ["Logical Error", "Timeout Error"]
    assert error_types_named("The code has a NameError.\nError types: Name Error") == ["Name Error"]
    assert error_types_named("none of them") == []
    assert created_instruction("#Created Instruction#:\n**Write a parser.**") == "Write a parser."
    assert created_instruction("Sure.\n#Created Instruction#: Sort a list.\n#Created Instruction#: More.") == "Sort a list."
    assert created_instruction("Make a new #Created Instruction#: here.\n#Given Instruction#:\nold") is None
    assert created_instruction("#Created Instruction#:   ") is None and created_instruction("A question?") is None


def test_an_unparsable_judgement_is_a_rejection_row_with_the_raw_text(soda_recipe, store, script):
    script.judge_garbage.add("starter/03-max_of_three")
    r = run_cli("compile", soda_recipe(stages(1)), "--store", store, "--json")
    assert r.code == 0, r.err
    with Store.open_readonly(str(store)) as st:
        v = resolve(st, "soda-test")
        fp = {s["name"]: s["fingerprint"] for s in v.stages}
        dropped = outputs.load_rejections(st, fp["judge_student"]).to_dicts()
        judged = outputs.load_output(st, fp["judge_student"])
    assert [(d["task_id"], d["reason"]) for d in dropped] == [("starter/03-max_of_three", "judge_unparsed")]
    assert dropped[0]["detail"].endswith("raw: The code looks fine to me, nothing more to say.")
    assert "starter/03-max_of_three" not in judged["task_id"].to_list()
    assert judged["student_score"].null_count() == 0 and 0.0 not in judged["student_score"].to_list()
    shown = run_cli("show", "soda-test", "--store", store, "--json").json()["soda"]["cycles"][0]
    assert shown["judge_unparsed"] == 1 and shown["questions_dropped"] == {"judge_unparsed": 1}


def test_the_json_shape_is_asked_for_and_read(soda_recipe, store):
    plan = stages(1)
    judge = next(s for s in plan if s.get("name") == "judge_student")
    judge["with"] = {"output": "json"}
    r = run_cli("compile", soda_recipe(plan), "--store", store, "--json")
    assert r.code == 0, r.err
    with Store.open_readonly(str(store)) as st:
        fp = {s["name"]: s["fingerprint"] for s in resolve(st, "soda-test").stages}
        judged = outputs.load_output(st, fp["judge_student"])
    assert set(judged["student_judge_shape"]) == {"json"} and judged["student_rule_scores"].null_count() == judged.height
    assert set(judged["student_score"]) <= {1.0, 1.5, 3.5, 5.5}


def test_a_judge_output_in_a_third_shape_is_refused_before_anything_runs(soda_recipe, store, servers):
    plan = stages(1)
    next(s for s in plan if s.get("name") == "judge_student")["with"] = {"output": "xml"}
    r = run_cli("compile", soda_recipe(plan), "--store", store)
    assert r.code == 1 and len(r.err.strip().splitlines()) == 1
    assert "stages[10].with.output" in r.err and "'rules' or 'json'" in r.err
    assert file_digest(store) is None and sum(s.tally.requests for s in servers.values()) == 0
