"""The required content of SODA's prompts (METHODS §3(i)): prompt A, prompt B with the five error types,
the rubric with its rules, points and end markers, prompts C and D (C's "rarer" clause, D without it),
and the requests the stages send with them."""

from __future__ import annotations

import re

from compiler.methods.soda import templates as t

QUESTION = "Write a function that returns the median of a list of numbers."
DEFINITIONS = {
    "Syntax Error": ("grammar", "bracket", "quote", "keyword"),
    "Logical Error": ("wrong results", "average", "dividing"),
    "Type Error": ("wrong type", "string", "integer"),
    "Name Error": ("variable", "function", "never defined"),
    "Timeout Error": ("never finishes", "loop", "exit condition"),
}


def test_prompt_a_asks_for_a_correct_solution_to_the_given_instruction():
    text = t.correct_prompt(QUESTION)
    assert "instruction that describes a programming task" in text and "correct code" in text
    assert text.index("#Given Instruction#:") < text.index(QUESTION) < text.index("#Response#:")
    assert text.rstrip().endswith("#Response#:")
    assert "error" not in text.lower()


def test_prompt_b_requires_one_of_exactly_five_error_types_each_defined_with_an_example():
    text = t.faulty_prompt(QUESTION, list(t.ERROR_TYPES))
    assert "MUST contain at least one of the following error types" in text
    listed = re.findall(r"^(\d)\. ([A-Za-z ]+ Error): (.+)$", text, re.M)
    assert [(int(n), name) for n, name, _ in listed] == list(enumerate(DEFINITIONS, start=1))
    for (_, name, definition) in listed:
        assert all(word in definition for word in DEFINITIONS[name]), name
        assert "for example" in definition
    assert "Do not explain the errors" in text
    assert "Do not reveal" in text and "comments" in text and "as if it were correct" in text
    assert text.index(QUESTION) > text.index("Constraints") and text.rstrip().endswith("#Response#:")


def test_prompt_b_lists_only_the_types_asked_for():
    text = t.faulty_prompt(QUESTION, ["Logical Error", "Timeout Error"])
    assert "1. Logical Error:" in text and "2. Timeout Error:" in text
    assert "Syntax Error" not in text and "Name Error" not in text


def test_the_rubric_has_five_rules_worth_six_points_and_its_end_markers():
    text = t.judge_prompt(QUESTION, "def median(xs): ...", "rules")
    assert "6-point scoring system" in text
    rules = re.findall(r"^Rule (\d)\. ([^(]+) \((\d) points?\): (.+)$", text, re.M)
    assert [(int(k), name.strip(), int(p)) for k, name, p, _ in rules] == [
        (1, "Basic Functionality", 2), (2, "Boundary Check", 1), (3, "Requirement Coverage", 1),
        (4, "Readability & Documentation", 1), (5, "Coding Practices", 1)]
    assert all(body.endswith("otherwise 0 points.") for *_, body in rules)
    assert "syntax or logic bugs" in rules[0][3] and "boundary" in rules[1][3]
    assert "efficiency, error handling and scalability" in rules[4][3]
    order = [text.index(m) for m in (QUESTION, "#End of programming question#", "def median", "#End of code#",
                                     "Rule 1.", "#End of scoring system#", '"Code Analysis:"', '"Score:"')]
    assert order == sorted(order)
    assert "Rule 5. Coding Practices: <points>" in text and "half points" in text


def test_the_json_rubric_asks_for_score_and_justification():
    text = t.judge_prompt(QUESTION, "code", "json")
    assert '{"score":' in text and '"justification":' in text and "#End of scoring system#" in text
    assert "Score:\nRule" not in text


def test_prompt_c_has_the_rarer_clause_and_prompt_d_does_not():
    easy, harder = t.new_question_prompt(QUESTION, "easy"), t.new_question_prompt(QUESTION, "hard")
    assert t.new_question_prompt(QUESTION, "medium") == harder
    for text in (easy, harder):
        assert "Instruction Creator" in text and "brand new instruction" in text
        assert "Do not provide a solution" in text and "same domain" in text
        assert "length and the difficulty" in text and "similar" in text
        assert "reasonable" in text and "understood and answered by humans" in text
        assert 'Start your output with "#Created Instruction#:"' in text and text.rstrip().endswith(QUESTION)
    assert "rarer" in easy and "more different" in easy
    assert "rarer" not in harder and "different" not in harder and "same task type" in harder
