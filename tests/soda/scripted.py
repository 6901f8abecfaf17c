"""A scripted model that answers every SODA prompt, for the starter tasks and for the questions it
writes itself, served by loopback OpenAI-compatible servers (one per role in the SODA tests; the
shipped-recipes test uses it through ``tests/engine/responders/soda.py``).

- prompt A: the task's reference in a fence (a question it wrote: a small function), after a line of
  prose; a task in ``correct_broken`` gets code that raises;
- prompt B: a faulty version, per task (``faulty``, else ``faulty_default``: ``name``): ``name`` (uses an undefined
  name: fails with NameError), ``syntax`` (does not parse), ``logic`` (returns None: runs, the judge
  scores it low), ``sneaky`` (runs, and the judge scores it full marks), ``same`` (the correct answer);
- the judge: the teacher's correct answer 5.5, a faulty one by its fault, the student's answer by a
  hash of the question (1.5, 3.5 or 5.5: hard, medium or easy) or 1 when it is wrong; in the
  ``rules`` shape with half points, or in JSON when asked; garbage for the tasks in ``judge_garbage``;
- the error-type question: "Error types: Logical Error";
- prompts C and D: ``#Created Instruction#:`` and a new question drawn from the request's seed, except
  that every seventh answer has no marker, every fifth repeats one fixed question and every eleventh
  is HumanEval/0's task (those are dropped as ``missing_marker``, ``duplicate`` and ``contaminated``);
- the student (a bare question): the reference, or ``return None`` for the tasks in ``student_wrong``.

It counts what it was asked per kind (``asked``), and which questions the student saw (``students``).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import Counter
from typing import Any

FIXED = "Write a function that counts the vowels in a sentence and returns the count as an integer."
HUMANEVAL_0 = "Check if in given list of numbers, are any two numbers closer to each other than given threshold."
VERBS = ("counts", "sums", "sorts", "reverses", "filters", "groups", "merges", "ranks", "joins", "splits")
NOUNS = ("lengths", "prefixes", "digits", "vowels", "pairs", "runs", "peaks", "gaps", "words", "signs")
ITEMS = ("string", "integer", "tuple", "date", "float", "path", "token", "record", "interval", "matrix")


def h(*parts: Any) -> int:
    return int(hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:12], 16)


def between(text: str, start: str, end: str | None = None) -> str:
    at = text.find(start)
    if at < 0:
        return ""
    body = text[at + len(start):]
    return (body.split(end, 1)[0] if end else body).strip()


def rules(total: float) -> str:
    names = ("Basic Functionality", "Boundary Check", "Requirement Coverage", "Readability & Documentation",
             "Coding Practices")
    left, lines = total, []
    for k, (name, top) in enumerate(zip(names, (2.0, 1.0, 1.0, 1.0, 1.0)), start=1):
        value = min(top, left)
        left -= value
        lines.append(f"Rule {k}. {name}: {value:g}")
    return "Code Analysis: the code was read step by step.\nScore:\n" + "\n".join(lines)


def fence(code: str) -> str:
    return f"```python\n{code.rstrip()}\n```"


class SodaScript:
    def __init__(self, tasks: list[dict[str, Any]], *, faulty: dict[str, str] | None = None,
                 correct_broken: set[str] | None = None, judge_garbage: set[str] | None = None,
                 student_wrong: set[str] | None = None, faulty_default: str = "name"):
        self.tasks = sorted(tasks, key=lambda t: -len(t["instruction"]))
        self.faulty, self.correct_broken = faulty or {}, correct_broken or set()
        self.faulty_default = faulty_default
        self.judge_garbage, self.student_wrong = judge_garbage or set(), student_wrong or set()
        self.asked: Counter = Counter()
        self.students: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> str:
        return self.respond(body, only_own=False) or ""

    def task_of(self, question: str) -> dict[str, Any] | None:
        return next((t for t in self.tasks if question.startswith(t["instruction"].strip())), None)

    def respond(self, body: dict[str, Any], *, only_own: bool = True) -> str | None:
        """The answer to a SODA prompt; any other request is the student's question, answered always,
        or with ``only_own`` only when it is a question this script wrote (None otherwise)."""
        text = body["messages"][-1]["content"] if "messages" in body else body.get("prompt", "")
        for marker, kind in (("Your goal is to write a correct code", "correct"), ("MUST contain at least one", "faulty"),
                             ("Which of these error types", "label"), ("6-point scoring system", "judge"),
                             ("act as an Instruction Creator", "new")):
            if marker in text:
                with self._lock:
                    self.asked[kind] += 1
                return getattr(self, f"_{kind}")(text, body)
        question = text.strip()
        if not only_own or "`fn_" in question or question == FIXED:
            with self._lock:
                self.asked["student"] += 1
                self.students.append(question)
            return self._student(question)
        return None

    def _code(self, question: str) -> str:
        task = self.task_of(question)
        if task is not None:
            return task["reference_solution"]
        name = re.search(r"`(fn_\w+)`", question)
        return f"def {name.group(1) if name else 'solve'}(items):\n    return len(items)\n"

    def _correct(self, text: str, body: dict[str, Any]) -> str:
        question = between(text, "#Given Instruction#:", "#Response#:")
        task = self.task_of(question)
        code = self._code(question)
        if task is not None and task["task_id"] in self.correct_broken:
            code += "\nraise ValueError('broken')\n"
        return f"Here is a correct solution.\n\n{fence(code)}\n"

    def _faulty(self, text: str, body: dict[str, Any]) -> str:
        question = between(text, "#Given Instruction#:", "#Response#:")
        task = self.task_of(question)
        code = self._code(question)
        kind = self.faulty.get(task["task_id"], self.faulty_default) if task else self.faulty_default
        if kind == "same":
            return f"Here is a correct solution.\n\n{fence(code)}\n"
        faulty = {"name": code + "\nprint(undefined_total)\n", "syntax": "def broken(:\n    pass\n",
                  "logic": re.sub(r"(def [^\n]*:\n)", r"\1    return None\n", code, count=1),
                  "sneaky": code + "\n# checked twice\n"}[kind]
        return f"Here is a solution.\n\n{fence(faulty)}\n"

    def _judge(self, text: str, body: dict[str, Any]) -> str:
        question = between(text, "Programming question:", "#End of programming question#")
        code = between(text, "Code:", "#End of code#")
        task = self.task_of(question)
        if task is not None and task["task_id"] in self.judge_garbage and "Here is" not in code:
            return "The code looks fine to me, nothing more to say."
        total = self._score(question, code)
        if "JSON object" in text:
            return f'{{"score": {total:g}, "justification": "step by step"}}'
        return rules(total)

    def _score(self, question: str, code: str) -> float:
        if "undefined_total" in code or "def broken(" in code:
            return 0.5
        if "return None" in code:
            return 1.5 if "Here is" in code else 1.0
        if "# checked twice" in code:
            return 6.0
        if "Here is a correct solution" in code:
            return 5.5
        return (1.5, 3.5, 5.5)[h(question) % 3]

    def _label(self, text: str, body: dict[str, Any]) -> str:
        return "Error types: Logical Error"

    def _new(self, text: str, body: dict[str, Any]) -> str:
        question = between(text, "#Given Instruction#:")
        n = h(question, body.get("seed"), body.get("temperature"))
        if n % 7 == 0:
            return "Here is a new instruction about lists."
        if n % 5 == 0:
            return f"#Created Instruction#: {FIXED}"
        if n % 11 == 0:
            return f"#Created Instruction#: {HUMANEVAL_0}"
        name = f"fn_{n % 16 ** 6:06x}"
        return (f"#Created Instruction#: Write a Python function `{name}` that {VERBS[n % 10]} the "
                f"{NOUNS[n // 10 % 10]} of a list of {ITEMS[n // 100 % 10]}s and returns the result.")

    def _student(self, question: str) -> str:
        task = self.task_of(question)
        code = self._code(question)
        if task is not None and task["task_id"] in self.student_wrong:
            code = re.sub(r"(def [^\n]*:\n)", r"\1    return None\n", code, count=1)
        return fence(code)
