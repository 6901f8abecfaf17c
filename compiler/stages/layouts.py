"""Row layouts a task source may use, and how each becomes a normalised task.

Detected from the keys of each row (after the source's ``columns`` renaming):

- ``humaneval``: ``{task_id, prompt, canonical_solution, test, entry_point}`` → the docstring is the
  instruction, prompt + solution the reference; ``check`` hidden, docstring examples ``seen``.
- ``mbpp``: ``{task_id, prompt | text, code, test_list: [assert...], test_imports?, test_setup_code?}``
  → assert tests, the first ``seen``.
- ``persd``: ``{task_id, text, code, test_list: [{input, output}]}`` → PERsD io tests (``input`` is a
  call, ``output`` the text of its value, ``str(value)``), the first ``seen_tests`` ``seen``.
- ``alpaca``: ``{instruction, input?, output}`` (Code Alpaca) → instruction (+ input on the next
  line), output as the reference; no tests (style ``run``).
- ``distillc``: the project's own format, the normalised fields themselves: ``task_id,
  instruction, entry_point?, header?, reference_solution?, tests?, meta?`` where ``tests`` is a
  TestSpec object (or its JSON), a list of assert strings, or a list of ``{call|input,
  expected|output}`` io pairs. Any row mapped with ``columns`` is read in this format.

Entry points and headers come from :mod:`evals.codeinfo` (``ast``-based). A row without a task id
gets its 0-based row number.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, Callable

from evals import codeinfo
from evals.problems import assert_tests, humaneval_tests, io_tests, mbpp_setup
from evals.sandbox.types import TestSpec

Row = dict[str, Any]
# Fields a source's `columns` may map (the normalised task fields, plus Code Alpaca's `input`).
MAPPABLE = ("task_id", "instruction", "input", "entry_point", "header", "reference_solution", "tests", "meta")


class RowError(ValueError):
    """A row cannot become a task; the message says why (the caller adds file and row)."""


def detect_layout(row: Row) -> str | None:
    keys = set(row)
    if {"prompt", "canonical_solution", "test", "entry_point"} <= keys:
        return "humaneval"
    if {"code", "test_list"} <= keys and keys & {"prompt", "text"}:
        tests = row["test_list"] or []
        return "persd" if tests and isinstance(tests[0], dict) else "mbpp"
    if "instruction" in keys and keys & {"reference_solution", "tests", "entry_point", "header"}:
        return "distillc"
    if {"instruction", "output"} <= keys:
        return "alpaca"
    if "instruction" in keys:
        return "distillc"
    return None


def normalise(row: Row, index: int, *, columns: dict[str, str], seen_tests: int = 1) -> dict[str, Any]:
    """The task fields (task_id, instruction, entry_point, header, reference_solution, tests as
    TestSpec JSON, meta dict) of one row; raises :class:`RowError`."""
    if columns:
        row = _rename(row, columns)
        layout = "distillc"
    else:
        layout = detect_layout(row)
    if layout is None:
        raise RowError(f"unrecognised row layout (keys: {', '.join(sorted(row)) or 'none'}); "
                       "map fields with the source's `columns`")
    task = _NORMALISERS[layout](row, seen_tests)
    task["task_id"] = _task_id(row, index)
    task["meta"] = {"layout": layout, **task.get("meta", {})}
    return task


def _rename(row: Row, columns: dict[str, str]) -> Row:
    unknown = sorted(set(columns) - set(MAPPABLE))
    if unknown:
        raise RowError(f"`columns` maps unknown field(s) {unknown}; mappable: {', '.join(MAPPABLE)}")
    missing = [src for src in columns.values() if src not in row]
    if missing:
        raise RowError(f"`columns` names missing column(s) {missing} (row has: {', '.join(sorted(row))})")
    mapped = {field: row[src] for field, src in columns.items()}
    return {**{k: v for k, v in row.items() if k in MAPPABLE}, **mapped}


def _task_id(row: Row, index: int) -> str:
    value = row.get("task_id")
    if value is None or (isinstance(value, str) and not value.strip()):
        return str(index)
    if isinstance(value, (str, int)):
        return str(value)
    raise RowError(f"task_id must be a string or an integer, got {type(value).__name__}")


def _text(row: Row, key: str, *, required: bool = True) -> str | None:
    """A string field; a missing (or, when required, blank) one is an error if ``required``."""
    value = row.get(key)
    blank = value is None or (isinstance(value, str) and not value.strip())
    if required and blank:
        raise RowError(f"missing required field {key!r}")
    if value is None:
        return None
    if not isinstance(value, str):
        raise RowError(f"field {key!r} must be a string, got {type(value).__name__}")
    return value


def _str_list(row: Row, key: str) -> list[str]:
    value = row.get(key)
    if value is None:
        raise RowError(f"missing required field {key!r}")
    if isinstance(value, str) or not all(isinstance(v, str) for v in value):
        raise RowError(f"field {key!r} must be a list of strings")
    return list(value)


def _with_code(instruction: str, reference: str | None, spec: TestSpec, test_src: list[str],
               entry_point: str | None = None, header: str | None = None) -> dict[str, Any]:
    ep = entry_point or spec.entry_point or codeinfo.find_entry_point(reference, test_src)
    if ep and spec.entry_point != ep:
        spec = replace(spec, entry_point=ep)
    return {
        "instruction": instruction, "reference_solution": reference, "entry_point": ep,
        "header": header or codeinfo.function_header(reference, ep), "tests": spec.to_json(),
    }


# -- one normaliser per layout ---------------------------------------------------------------------

def _humaneval(row: Row, seen_tests: int) -> dict[str, Any]:
    prompt, ep = _text(row, "prompt"), _text(row, "entry_point")
    reference = prompt + (_text(row, "canonical_solution", required=False) or "")
    spec = humaneval_tests(prompt, _text(row, "test"), ep)
    doc = codeinfo.function_docstring(prompt, ep) or prompt.strip()
    task = _with_code(doc, reference, spec, [], ep, codeinfo.function_header(prompt, ep))
    task["meta"] = {"prompt": prompt}
    return task


def _mbpp(row: Row, seen_tests: int) -> dict[str, Any]:
    text = _text(row, "prompt", required=False) or _text(row, "text")
    asserts = _str_list(row, "test_list")
    code = _text(row, "code")
    ep = codeinfo.find_entry_point(code, asserts)
    spec = assert_tests(asserts, ep, mbpp_setup(row), n_seen=seen_tests)
    return _with_code(text, code, spec, asserts, ep)


def _persd(row: Row, seen_tests: int) -> dict[str, Any]:
    text, code = _text(row, "text"), _text(row, "code")
    pairs = _io_pairs(row.get("test_list") or [])
    ep = codeinfo.find_entry_point(code, [c for c, _ in pairs[:1]])
    task = _with_code(text, code, io_tests(pairs, ep, n_seen=seen_tests), [c for c, _ in pairs], ep)
    dropped = len(row.get("test_list") or []) - len(pairs)
    task["meta"] = {"tests_without_output": dropped} if dropped else {}
    return task


def _io_pairs(items: list[Any]) -> list[tuple[str, str]]:
    """(call, expected text) of io tests given as ``{input, output}`` or ``{call, expected}``;
    tests whose output was nulled (an object repr, PERsD P0) are left out."""
    pairs = []
    for item in items:
        if not isinstance(item, dict):
            raise RowError(f"an io test must be an object with input/output, got {type(item).__name__}")
        call, expected = item.get("input", item.get("call")), item.get("output", item.get("expected"))
        if not isinstance(call, str) or not call.strip():
            raise RowError("an io test has no `input` call")
        if expected is not None:
            pairs.append((call, expected if isinstance(expected, str) else str(expected)))
    return pairs


def _alpaca(row: Row, seen_tests: int) -> dict[str, Any]:
    instruction = _text(row, "instruction")
    extra = _text(row, "input", required=False) or ""
    output = _text(row, "output", required=False)
    if extra.strip():
        instruction = f"{instruction}\n{extra}"
    ep = codeinfo.find_entry_point(output)
    task = _with_code(instruction, output, TestSpec(style="run", entry_point=ep), [], ep)
    task["meta"] = {"input": extra} if extra.strip() else {}
    return task


def _distillc(row: Row, seen_tests: int) -> dict[str, Any]:
    instruction = _text(row, "instruction")
    reference = _text(row, "reference_solution", required=False)
    spec, test_src = _own_tests(row.get("tests"), seen_tests)
    task = _with_code(instruction, reference, spec, test_src,
                      _text(row, "entry_point", required=False), _text(row, "header", required=False))
    task["meta"] = _meta(row.get("meta"))
    return task


def _own_tests(value: Any, seen_tests: int) -> tuple[TestSpec, list[str]]:
    """A TestSpec from the own format's ``tests`` field, and the test sources that name the
    entry point (assert statements or io calls)."""
    if isinstance(value, str) and value.strip():
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise RowError(f"`tests` is not valid JSON ({exc.msg})") from None
    if value is None or value == "" or value == []:
        return TestSpec(style="run"), []
    if isinstance(value, dict):
        try:
            spec = TestSpec.from_dict(value)
        except (TypeError, ValueError) as exc:
            raise RowError(f"`tests` is not a TestSpec ({exc})") from None
        return spec, [c.code or c.call or "" for c in spec.cases]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return assert_tests(value, None, n_seen=seen_tests), list(value)
    if isinstance(value, list):
        pairs = _io_pairs(value)
        return io_tests(pairs, None, n_seen=seen_tests), [c for c, _ in pairs]
    raise RowError(f"`tests` must be a TestSpec object, a list of asserts or io pairs, got {type(value).__name__}")


def _meta(value: Any) -> dict[str, Any]:
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise RowError("`meta` is not a JSON object") from None
    if not isinstance(value, dict):
        raise RowError(f"`meta` must be an object, got {type(value).__name__}")
    return value


_NORMALISERS: dict[str, Callable[[Row, int], dict[str, Any]]] = {
    "humaneval": _humaneval, "mbpp": _mbpp, "persd": _persd, "alpaca": _alpaca, "distillc": _distillc,
}
