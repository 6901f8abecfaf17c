"""PERsD's student-side prompts, shared by the compiler (training records) and the evaluator
(multi-step inference), so that a model is refined at inference with exactly the text it was
trained on (METHODS §1(b) P1/P5 and §1(c) item 3).

- :func:`text_to_code_prompt`: the task as a docstring, a blank line, then the code up to and
  including the function's ``def`` line; the model continues with the body.
- :func:`refine_prompt`: the refinement prompt. It shows the task, the student's code (header
  included) and the execution error, then repeats the task and ends with the header, so the model
  again continues with a function body.
- :func:`inference_refine_prompt`: the same at inference time, where the task text is left out
  and the header is whatever follows the last ``\"\"\"`` of the evaluation prompt.

Nothing here imports the compiler (``evals`` stays independent of it).
"""

from __future__ import annotations

REFINE_INSTRUCTION = (
    "Rectify the below code for the given task based on the errors obtained in the unit tests."
)
DOCSTRING_QUOTES = '"""'


def task_block(task: str) -> str:
    """The task as PERsD shows it: a triple-quoted block on its own lines ("" for no task)."""
    text = task.strip()
    return f"{DOCSTRING_QUOTES}\n{text}\n{DOCSTRING_QUOTES}" if text else ""


def text_to_code_prompt(task: str, code_prefix: str) -> str:
    """PERsD's text-to-code prompt (P1): ``\"\"\"\\n{task}\\n\"\"\"\\n\\n{code_prefix}``.

    ``code_prefix`` is the reference code up to and including the ``def`` line (imports and
    helpers before it included); a final newline is added when it has none, so the prompt always
    ends where the body starts.
    """
    prefix = code_prefix if code_prefix.endswith("\n") else code_prefix + "\n"
    return f"{task_block(task)}\n\n{prefix}"


def header_of(prompt: str) -> str:
    """What follows the last ``\"\"\"`` of a text-to-code prompt: the code up to the ``def`` line
    (with the blank lines before it). The whole prompt when it holds no docstring."""
    _, quotes, after = prompt.rpartition(DOCSTRING_QUOTES)
    return after if quotes else prompt


def refine_prompt(*, task: str, code: str, error: str, header: str) -> str:
    """The student refinement prompt (METHODS §1(c) item 3)::

        Rectify the below code for the given task based on the errors obtained in the unit tests.

        TASK:
        \"\"\"
        {task}
        \"\"\"
        {code}

        ERROR:
        {error}

        \"\"\"
        {task}
        \"\"\"{header}

    ``task`` is the task text (it is wrapped in the triple-quoted block here); an empty ``task``
    leaves both blocks out, as PERsD does at inference. ``code`` is the incorrect program, header
    included; ``error`` the execution feedback text. ``header`` is used verbatim: pass what follows
    the last ``\"\"\"`` of the text-to-code prompt (:func:`header_of`), so that with a task the
    prompt ends exactly like :func:`text_to_code_prompt` and the model continues with the body.
    """
    block = task_block(task)
    shown_task = f"{block}\n" if block else ""
    return (f"{REFINE_INSTRUCTION}\n\nTASK:\n{shown_task}{code.rstrip()}\n\n"
            f"ERROR:\n{error.strip()}\n\n{block}{header}")


def inference_refine_prompt(prompt: str, code: str, error: str) -> str:
    """The refinement prompt at multi-step inference (PERsD's evaluation): the task is replaced by
    the empty string and the header is the evaluation ``prompt``'s text after its last ``\"\"\"``."""
    return refine_prompt(task="", code=code, error=error, header=header_of(prompt))


__all__ = [
    "REFINE_INSTRUCTION", "header_of", "inference_refine_prompt", "refine_prompt", "task_block",
    "text_to_code_prompt",
]
