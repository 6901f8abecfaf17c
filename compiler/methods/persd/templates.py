"""The teacher-side texts of PERsD (METHODS §1(c) items 1 and 2), in our own wording with the
structure the method prescribes: the test-input request, and the two-turn refinement chat whose
first turn carries the gold solution and whose second turn carries the student's incorrect code,
the feedback and the rules.

The student-side prompts (text-to-code and refinement) live in :mod:`evals.persd_prompts`, which the
evaluator shares.
"""

from __future__ import annotations

from typing import Literal

FeedbackKind = Literal["auto", "nl", "none"]
Closeness = Literal["v0", "v1", "v2"]

TEST_INPUTS = """\
Write {n} example inputs for unit-testing the code below on the given task, one input per line.
Write each input as a call of the function, shaped like {entry_point}(arg_1, ..., arg_n), and write \
nothing else.

TASK:
{instruction}

CODE:
{reference}

EXAMPLE INPUTS:
"""

TURN1 = """\
Complete the Python function for the task below. The input comes in this format:
TASK: <what the function must do>
HEADER: <the function's def line; your code must start with it>

TASK:
{instruction}

HEADER:
{header}

CORRECT CODE:
"""

_TURN2_INTRO = ("Now act as a Python expert and rectify the incorrect code below for the task above, using the "
                "error it produced on the unit tests.")
_TURN2_BODY = """\
INCORRECT CODE:
{code}

ERROR:
{feedback}
{task_again}
Follow these rules:
{rules}

"""
TURN2_AUTO = _TURN2_INTRO + "\n\n" + _TURN2_BODY + "RECTIFIED CODE:\n"
TURN2_NL = (_TURN2_INTRO + " Work in two steps:\n"
            "Step 1: under the heading FEEDBACK, explain briefly what is wrong with the code.\n"
            "Step 2: under the heading RECTIFIED CODE, write the corrected code.\n\n"
            + _TURN2_BODY + "Step 1: FEEDBACK:\n")

TURN2_NONE = """\
Now act as a Python expert and rectify the incorrect code below for the task above.

INCORRECT CODE:
{code}
{task_again}
Follow these rules:
{rules}

RECTIFIED CODE:
"""

TASK_AGAIN = "\nTASK:\n{instruction}\n\nHEADER:\n{header}\n"

RULE_FIX = "Fix the logic of the code and write the complete function."
RULE_CLOSE = {
    "v0": None,
    "v1": ("If the code is badly wrong, rewrite it from scratch; otherwise keep the rectified code as "
           "close as possible to the given code."),
    "v2": "Keep the rectified code as close as possible to the INCORRECT CODE.",
}
RULE_FENCE = "Put the code in a single ```python fenced block and start it with the header."

TURN2 = {"auto": TURN2_AUTO, "nl": TURN2_NL, "none": TURN2_NONE}


def rules(closeness: Closeness) -> str:
    """The numbered rules of the second turn for one closeness variant."""
    items = [r for r in (RULE_FIX, RULE_CLOSE[closeness], RULE_FENCE) if r]
    return "\n".join(f"{i}. {r}" for i, r in enumerate(items, start=1))


NL_REFINE_INSTRUCTION = (
    "Rectify the below code for the given task based on the errors obtained in the unit tests. First explain "
    "what is wrong under FEEDBACK, then write the rectified code under RECTIFIED CODE."
)


def nl_refine_prompt(*, task: str, code: str, error: str) -> str:
    """The student's side of the NL-feedback format (PERsD-refine-nl): the task, the incorrect code
    and its error; the student continues with its feedback, then ``RECTIFIED CODE:`` and the code
    (:func:`nl_refine_completion`)."""
    return (f"{NL_REFINE_INSTRUCTION}\n\nTASK:\n\"\"\"\n{task.strip()}\n\"\"\"\n{code.rstrip()}\n\n"
            f"ERROR:\n{error.strip()}\n\nFEEDBACK:\n")


def nl_refine_completion(feedback: str, code: str) -> str:
    return f"{feedback.strip()}\n\nRECTIFIED CODE:\n{fenced(code)}\n"


def fenced(code: str) -> str:
    return f"```python\n{code.rstrip()}\n```"


def refinement_chat(*, instruction: str, header: str, gold: str, code: str, feedback: str,
                    kind: FeedbackKind = "auto", closeness: Closeness = "v1",
                    repeat_task: bool = False) -> list[tuple[str, str]]:
    """The two-turn chat sent to the teacher for one failed attempt: (user: task and header,
    assistant: the gold solution, user: incorrect code, feedback and rules). ``repeat_task``
    repeats TASK/HEADER after the error (PERsD's ``format2``)."""
    again = TASK_AGAIN.format(instruction=instruction.strip(), header=header.strip()) if repeat_task else ""
    turn2 = TURN2[kind].format(code=code.rstrip(), feedback=feedback.strip(), task_again=again,
                               rules=rules(closeness))
    return [("user", TURN1.format(instruction=instruction.strip(), header=header.strip())),
            ("assistant", fenced(gold)),
            ("user", turn2)]
