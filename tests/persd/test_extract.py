"""PERsD's code extraction: the student's attempt clean-up (P1) and the refinement parser (P4)."""

from __future__ import annotations

import json

from compiler.methods.persd.extract import clean_attempt, parse_refinement, prompt_code
from compiler.methods.persd.templates import refinement_chat, rules

PREFIX = "import math\n\ndef area(r: float = 1.0, unit: str = 'cm:2') -> float:\n"


def test_prompt_code_is_the_gold_up_to_the_header():
    row = {"entry_point": "area", "reference_solution": PREFIX + "    return math.pi * r * r\n"}
    assert prompt_code(row) == PREFIX
    assert prompt_code({"entry_point": "f", "reference_solution": None, "header": "def f(x):"}) == "def f(x):\n"
    assert prompt_code({"entry_point": None, "reference_solution": "def f():\n    pass\n"}) is None


def test_completion_is_cut_at_the_first_column_zero_line():
    text = "    x = r * r\n\n    return math.pi * x\n\nprint(area(2))\ndef other():\n    pass\n"
    assert clean_attempt(PREFIX, text, "area") == PREFIX + "    x = r * r\n\n    return math.pi * x\n"


def test_a_model_that_redefines_the_function_is_cut_at_its_def():
    text = "    return 0\ndef area(r):\n    return 1\n"
    assert clean_attempt(PREFIX, text, "area") == PREFIX + "    return 0\n"


def test_an_empty_completion_leaves_the_bare_header():
    assert clean_attempt("def f(x):\n", "", "f") == "def f(x):\n"


def test_chat_answer_with_its_own_function_and_imports():
    text = "Sure!\n```python\nimport re\nimport math\n\ndef area(r, unit='cm'):\n    return r\n```\nThis works."
    assert clean_attempt(PREFIX, text, "area", chat=True) == \
        "import math\n\nimport re\ndef area(r, unit='cm'):\n    return r\n"


def test_chat_answer_with_only_a_body_continues_the_header():
    assert clean_attempt(PREFIX, "```python\n    return 2 * r\n```", "area", chat=True) == PREFIX + "    return 2 * r\n"


STUDENT = "def f(x):\n    return x\n"


def test_refinement_takes_the_last_fence_after_the_last_marker():
    text = ("RECTIFIED CODE: draft\n```python\ndef f(x):\n    return 0\n```\n"
            "Better:\nRECTIFIED CODE:\n```\ndef f(x):\n    return 1\n```\n```python\ndef f(x):\n    return 2\n```")
    r = parse_refinement(text, STUDENT)
    assert (r.code, r.method, r.parsed) == ("def f(x):\n    return 2\n", "fence", True)


def test_refinement_without_fence_keeps_code_lines():
    text = "RECTIFIED CODE:\nHere it is\nimport os\ndef f(x):\n    return x + 1\nThat fixes it."
    r = parse_refinement(text, STUDENT)
    assert (r.code, r.method) == ("import os\ndef f(x):\n    return x + 1\n", "lines")


def test_refinement_with_one_line_falls_back_to_the_student():
    r = parse_refinement("RECTIFIED CODE:\n```python\nreturn x\n```", STUDENT)
    assert (r.code, r.method, r.parsed) == (STUDENT, "student", False)
    assert parse_refinement("No idea, sorry.", STUDENT).method == "student"


def test_nl_refinement_keeps_the_feedback():
    text = ("The loop stops one element early.\n\nStep 2: RECTIFIED CODE:\n"
            "```python\ndef f(x):\n    return x + 1\n```")
    r = parse_refinement(text, STUDENT, nl=True)
    assert r.feedback == "The loop stops one element early."
    assert r.code == "def f(x):\n    return x + 1\n"
    assert parse_refinement(text, STUDENT).feedback is None


def chat(**kw) -> list[tuple[str, str]]:
    base = dict(instruction="Add one.", header="def f(x):", gold="def f(x):\n    return x + 1\n",
                code=STUDENT, feedback="AssertionError\nINPUT: (1)\nOUTPUT: 1\nEXPECTED: 2")
    return refinement_chat(**{**base, **kw})


def test_refinement_chat_has_two_user_turns_around_the_gold():
    turns = chat()
    assert [r for r, _ in turns] == ["user", "assistant", "user"]
    assert "TASK:\nAdd one.\n\nHEADER:\ndef f(x):\n\nCORRECT CODE:" in turns[0][1]
    assert turns[1][1] == "```python\ndef f(x):\n    return x + 1\n```"
    second = turns[2][1]
    assert "INCORRECT CODE:\ndef f(x):\n    return x\n\nERROR:\nAssertionError\nINPUT: (1)" in second
    assert second.rstrip().endswith("RECTIFIED CODE:") and "as close as possible" in second
    json.dumps(turns)


def test_feedback_kinds_and_closeness_variants():
    assert "ERROR:" not in chat(kind="none")[2][1]
    assert chat(kind="nl")[2][1].rstrip().endswith("Step 1: FEEDBACK:")
    assert rules("v0").count("\n") == 1 and "close" not in rules("v0")
    assert "INCORRECT CODE" in rules("v2") and "rewrite" not in rules("v2")
    assert "rewrite" in rules("v1")
    again = chat(repeat_task=True)[2][1]
    assert again.index("ERROR:") < again.index("TASK:\nAdd one.") < again.index("RECTIFIED CODE:")
