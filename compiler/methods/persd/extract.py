"""Getting PERsD's code out of model text (METHODS §1(b) P1 and P4): the student's attempt, cleaned
the way PERsD cleans it, and the teacher's refinement, parsed with PERsD's fallbacks."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from compiler.codeparse import code_lines_fallback, fenced_blocks, pick_block, split_function

# PERsD cuts the function at the first later line starting in column 0 with a letter, `#` or `"`;
# we also cut at other quotes, backticks (a closing fence) and decorators.
_CUT = re.compile(r"""^[A-Za-z_#"'`@]""")
_IMPORT = re.compile(r"^(import |from \S+ import )")


def prompt_code(row: dict[str, Any]) -> str | None:
    """The code part of the task prompt: the gold code up to and including the ``def`` line of the
    entry point (imports and helpers before it included); the bare header without a gold; None
    without an entry point."""
    if not row.get("entry_point"):
        return None
    parts = split_function(row.get("reference_solution") or "", row.get("entry_point"))
    if parts is not None:
        return parts.prefix + parts.header
    header = row.get("header")
    return header.rstrip() + "\n" if header else None


def clean_attempt(code_prefix: str, text: str, entry_point: str, *, chat: bool = False) -> str:
    """The student's program (P1): from the ``def`` line on, cut at the first later line that
    starts in column 0 with a letter, ``#`` or a quote, with the prompt's code before the header
    (its imports and helpers) put back in front.

    Completion prompts: the text continues the prompt's header. Chat answers: the code is the
    fenced block (else the text); when it holds its own ``def`` of the entry point it is taken
    from there (with its own imports), otherwise it is read as the body after the prompt's header.
    """
    split = _split_header(code_prefix, entry_point)
    before, header = split if split else ("", code_prefix)
    own_imports: list[str] = []
    whole = header + text
    if chat:
        answer = pick_block(fenced_blocks(text), entry_point, "auto") or text
        at = _def_index(answer.splitlines(), entry_point)
        if at is None:
            whole = header + answer
        else:
            lines = answer.splitlines()
            own_imports = [ln for ln in lines[:at] if _IMPORT.match(ln) and ln not in before]
            whole = "\n".join(lines[at:]) + "\n"
            header = lines[at]
    return before + "".join(ln + "\n" for ln in own_imports) + _cut(whole, max(header.count("\n"), 1))


def _split_header(code_prefix: str, entry_point: str) -> tuple[str, str] | None:
    lines = code_prefix.splitlines(keepends=True)
    at = _def_index([ln.rstrip("\n") for ln in lines], entry_point)
    return None if at is None else ("".join(lines[:at]), "".join(lines[at:]))


def _def_index(lines: list[str], entry_point: str) -> int | None:
    return next((i for i, ln in enumerate(lines)
                 if re.match(rf"(async\s+)?def\s+{re.escape(entry_point)}\s*\(", ln)), None)


def _cut(code: str, header_lines: int) -> str:
    lines = code.splitlines()
    keep = lines[:max(header_lines, 1)]
    for line in lines[len(keep):]:
        if _CUT.match(line):
            break
        keep.append(line)
    return "\n".join(keep).rstrip() + "\n"


# -- the teacher's refinement (P4) -------------------------------------------------------------------

MARKER = "RECTIFIED CODE"
ParseMethod = Literal["fence", "lines", "student"]


@dataclass(frozen=True)
class Refinement:
    code: str
    method: ParseMethod          # where the code came from
    feedback: str | None = None  # the teacher's FEEDBACK text (nl mode)

    @property
    def parsed(self) -> bool:
        return self.method != "student"


def parse_refinement(text: str, student_code: str, *, nl: bool = False, min_lines: int = 2) -> Refinement:
    """PERsD's ``parse_chatgpt_output``: take the text after the last ``RECTIFIED CODE`` marker
    (in ``nl`` mode the text before it, after ``FEEDBACK``, is the feedback); then the last fenced
    block; without a fence, the indented / ``def`` / ``import`` / ``from`` lines; when that leaves
    fewer than ``min_lines`` non-blank lines, the student's own code (which then fails the tests)."""
    before, marker, after = text.rpartition(MARKER)
    tail = after.lstrip(":* \t") if marker else text
    feedback = _feedback(before) if nl and marker else None
    blocks = fenced_blocks(tail)
    code, method = (blocks[-1].code, "fence") if blocks else (code_lines_fallback(tail), "lines")
    if sum(1 for ln in code.splitlines() if ln.strip()) < min_lines:
        return Refinement(student_code, "student", feedback)
    return Refinement(code, method, feedback)


def _feedback(text: str) -> str | None:
    """The teacher's feedback: what follows the last ``FEEDBACK`` heading, without a trailing step
    label (``Step 2:``)."""
    _, found, after = text.rpartition("FEEDBACK")
    body = after if found else text
    body = re.sub(r"(?is)\bstep\s*2\s*:?\s*$", "", body.strip().rstrip("*# ")).strip()
    return body.lstrip(":* \n").strip() or None
