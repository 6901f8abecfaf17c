"""PERsD's student prompts: the shapes METHODS §1(b) P1 and §1(c) item 3 describe."""

from __future__ import annotations

from evals.persd_prompts import (
    REFINE_INSTRUCTION, header_of, inference_refine_prompt, refine_prompt, text_to_code_prompt,
)
from evals.problems import Problem, persd_prompt
from evals.sandbox.types import TestSpec

TASK = "Return the sum of a and b."
CODE = "def add(a, b):\n    return a - b\n"
ERROR = "AssertionError\nINPUT: add(1, 2)\nOUTPUT: -1\nEXPECTED: 3"


def test_text_to_code_prompt_is_docstring_then_header():
    prompt = text_to_code_prompt(f"  {TASK}\n", "import math\ndef add(a, b):")
    assert prompt == f'"""\n{TASK}\n"""\n\nimport math\ndef add(a, b):\n'


def test_refine_prompt_layout():
    header = header_of(text_to_code_prompt(TASK, "def add(a, b):\n"))
    prompt = refine_prompt(task=TASK, code=CODE, error=ERROR, header=header)
    assert prompt == (
        f"{REFINE_INSTRUCTION}\n\nTASK:\n\"\"\"\n{TASK}\n\"\"\"\n{CODE.rstrip()}\n\n"
        f"ERROR:\n{ERROR}\n\n\"\"\"\n{TASK}\n\"\"\"\n\ndef add(a, b):\n")


def test_refine_prompt_ends_like_the_text_to_code_prompt():
    t2c = text_to_code_prompt(TASK, "from typing import List\n\ndef add(a: int = 1, b: int = 2) -> int:\n")
    prompt = refine_prompt(task=TASK, code=CODE, error=ERROR, header=header_of(t2c))
    assert prompt.endswith("\n\n" + t2c)


def test_inference_prompt_drops_the_task_and_keeps_the_header():
    problem = Problem(task_id="T/1", prompt=TASK, entry_point="add",
                      reference="def add(a, b):\n    return a + b\n",
                      tests=TestSpec(style="mbpp"), benchmark="mbpp")
    eval_prompt = persd_prompt(problem)
    prompt = inference_refine_prompt(eval_prompt, CODE, ERROR)
    assert TASK not in prompt
    assert prompt.startswith(f"{REFINE_INSTRUCTION}\n\nTASK:\n{CODE.rstrip()}\n\nERROR:\n{ERROR}\n\n")
    assert prompt.endswith("\n\ndef add(a, b):\n")
    assert prompt == refine_prompt(task="", code=CODE, error=ERROR, header=eval_prompt.rsplit('"""', 1)[1])


def test_header_of_a_prompt_without_docstring_is_the_prompt():
    assert header_of("def f(x):\n") == "def f(x):\n"
