"""SODA's prompt texts (METHODS §3(i), the authors' prompt files), in our own wording with the content
the method prescribes:

- prompt A: the teacher's correct answer (no system message);
- prompt B: the teacher's faulty answer, which must contain at least one of the five error types
  (each with a one-sentence definition and an example), without explaining or revealing its errors;
- the scoring rubric: six points over five rules, with the question, the code and the rubric each
  closed by its end marker, answered as ``Code Analysis:`` then ``Score:`` with the five rules (the
  ``rules`` output) or, as an earlier iteration of the authors' prompt did, as JSON ``{"score",
  "justification"}`` (the ``json`` output);
- prompts C (easy questions: a rarer, more different instruction of the same domain) and D (medium and
  hard questions: an instruction of the same domain and task type), both answered after
  ``#Created Instruction#:``;
- the error-type question the judge answers for a faulty answer whose type execution did not reveal.
"""

from __future__ import annotations

from typing import Literal

ErrorType = Literal["Syntax Error", "Logical Error", "Type Error", "Name Error", "Timeout Error"]

# The five error types of prompt B, in the authors' order, each with its definition and example.
ERROR_TYPES: dict[str, str] = {
    "Syntax Error": "the code breaks the grammar of the language, for example a bracket or a quote that "
                    "is never closed, or a misspelt keyword",
    "Logical Error": "the code runs but gives wrong results because it misunderstands the problem, for "
                     "example an average computed without dividing by the number of values",
    "Type Error": "an operation is applied to a value of the wrong type, for example adding a string and "
                  "an integer without converting one of them",
    "Name Error": "the code uses a variable or a function that is never defined, for example a call of a "
                  "helper function that was never written",
    "Timeout Error": "the code never finishes, for example a loop whose exit condition can never become true",
}

CREATED_MARKER = "#Created Instruction#:"
RESPONSE_MARKER = "#Response#:"

CORRECT = """\
Below is an instruction that describes a programming task. Your goal is to write a correct code \
solution for the #Given Instruction#.

#Given Instruction#:
{question}

#Response#:
"""

FAULTY = """\
Below is an instruction that describes a programming task. Your goal is to write a code solution for \
the #Given Instruction#.

The solution MUST contain at least one of the following error types:
{error_types}

Constraints:
- Do not explain the errors.
- Do not reveal, in the text, in the code or in its comments, that the solution is incorrect: write it \
as if it were correct.

#Given Instruction#:
{question}

#Response#:
"""

RUBRIC = """\
Rule 1. Basic Functionality (2 points): the code has no obvious syntax or logic bugs and makes a basic \
attempt at solving the problem; otherwise 0 points.
Rule 2. Boundary Check (1 point): the code handles the core cases and checks the boundary cases; \
otherwise 0 points.
Rule 3. Requirement Coverage (1 point): the code covers most of the requirements of the question; \
otherwise 0 points.
Rule 4. Readability & Documentation (1 point): the code is easy to read, with clear names, comments or \
documentation; otherwise 0 points.
Rule 5. Coding Practices (1 point): the code follows good practice in efficiency, error handling and \
scalability; otherwise 0 points."""

RULE_NAMES = ("Basic Functionality", "Boundary Check", "Requirement Coverage", "Readability & Documentation",
              "Coding Practices")
RULE_POINTS = (2.0, 1.0, 1.0, 1.0, 1.0)

_JUDGE_HEAD = """\
Assess the quality of the code below for the given programming question, using the 6-point scoring \
system that follows it.

Programming question:
{question}
#End of programming question#

Code:
{code}
#End of code#

Scoring system:
""" + RUBRIC + """
#End of scoring system#

"""

JUDGE_RULES = _JUDGE_HEAD + """\
First give a step-by-step analysis, starting with "Code Analysis:". Then give the points of each rule \
(half points are allowed), starting with "Score:", one rule per line:
Score:
Rule 1. Basic Functionality: <points>
Rule 2. Boundary Check: <points>
Rule 3. Requirement Coverage: <points>
Rule 4. Readability & Documentation: <points>
Rule 5. Coding Practices: <points>
"""

JUDGE_JSON = _JUDGE_HEAD + """\
Answer with a JSON object only: {{"score": <the total points, 0 to 6; half points are allowed>, \
"justification": "<a step-by-step analysis of the code against each rule>"}}
"""

_CREATOR_HEAD = """\
I want you to act as an Instruction Creator.
Your goal is to draw inspiration from the #Given Instruction# to create a brand new instruction. Do not \
provide a solution to it.
"""

_CREATOR_TAIL = """\
The length and the difficulty of the #Created Instruction# should be similar to those of the #Given \
Instruction#.
The #Created Instruction# must be reasonable, and must be understood and answered by humans.
Start your output with "#Created Instruction#:".

#Given Instruction#:
{question}
"""

NEW_EASY = _CREATOR_HEAD + """\
The #Created Instruction# should belong to the same domain as the #Given Instruction#, but be even \
rarer and more different from it.
""" + _CREATOR_TAIL

NEW_HARDER = _CREATOR_HEAD + """\
The #Created Instruction# should belong to the same domain and the same task type as the #Given \
Instruction#.
""" + _CREATOR_TAIL

LABEL = """\
Programming question:
{question}
#End of programming question#

Code:
{code}
#End of code#

The code above was written for the programming question, and it contains at least one error. Which of \
these error types does it contain?
{error_types}

Answer with one line that starts with "Error types:" and names the types the code contains, separated \
by commas.
"""


def error_list(types: tuple[str, ...] | list[str]) -> str:
    """The numbered error types with their definitions, as prompt B and the label question list them."""
    return "\n".join(f"{i}. {name}: {ERROR_TYPES[name]}." for i, name in enumerate(types, start=1))


def correct_prompt(question: str) -> str:
    return CORRECT.format(question=question.strip())


def faulty_prompt(question: str, types: tuple[str, ...] | list[str]) -> str:
    return FAULTY.format(question=question.strip(), error_types=error_list(types))


def judge_prompt(question: str, code: str, output: Literal["rules", "json"]) -> str:
    template = JUDGE_RULES if output == "rules" else JUDGE_JSON
    return template.format(question=question.strip(), code=code.strip())


def new_question_prompt(question: str, tier: str) -> str:
    """Prompt C for an easy question, prompt D for a medium or hard one."""
    return (NEW_EASY if tier == "easy" else NEW_HARDER).format(question=question.strip())


def label_prompt(question: str, code: str) -> str:
    return LABEL.format(question=question.strip(), code=code.strip(), error_types=error_list(list(ERROR_TYPES)))
