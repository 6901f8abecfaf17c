"""SODA's static view in the real sandbox: the first fenced block's language, compiled and run for every
language whose toolchain is installed; others, untagged blocks and answers without code are unknown;
unbalanced fences fail unrun; a failure is named with prompt B's error types."""

from __future__ import annotations

import polars as pl
import pytest

from compiler.methods.soda.static_check import StaticCheck
from evals.sandbox import InMemoryCache, run_many
from evals.sandbox.toolchains import available


class Sandbox:
    """What ``static_check`` needs of a stage context: the sandbox."""

    def execute(self, jobs):
        return run_many(list(jobs), cache=InMemoryCache())


def check(*answers: str) -> list[dict]:
    frame = pl.DataFrame({"row_id": [str(i) for i in range(len(answers))], "answer": list(answers)})
    stage = StaticCheck(StaticCheck.Params(code="answer", prefix="a", cpu_seconds=2.0))
    out = stage.run(frame, Sandbox()).frame
    return [{k.removeprefix("a_"): v for k, v in r.items() if k.startswith("a_")} for r in out.iter_rows(named=True)]


def fenced(lang: str, code: str, prose: str = "Here it is:") -> str:
    return f"{prose}\n\n```{lang}\n{code}\n```\n\nThat is all."


PYTHON = [
    (fenced("python", "def f(x):\n    return x + 1\nprint(f(1))"), "pass", None),
    (fenced("py", "def f(:\n    pass"), "fail", "Syntax Error"),
    (fenced("python", "print(total)"), "fail", "Name Error"),
    (fenced("python", "print('a' + 1)"), "fail", "Type Error"),
    (fenced("python", "while True:\n    pass"), "fail", "Timeout Error"),
    (fenced("python", "print([1, 2][5])"), "fail", "Logical Error"),
]


def test_python_outcomes_and_error_types():
    got = check(*[a for a, _, _ in PYTHON])
    assert [(g["language"], g["check"], g["error_type"]) for g in got] == \
        [("python", c, e) for _, c, e in PYTHON]
    assert got[0]["check_result"].strip() == "2" and "NameError" in got[2]["check_result"]


def test_only_the_first_block_runs():
    answer = fenced("python", "print('first')") + "\n\n" + fenced("python", "raise SystemExit(3)")
    assert check(answer)[0]["check"] == "pass"


def test_unknown_incomplete_and_missing_code():
    got = check("No code at all, only words.", fenced("sql", "SELECT 1;"), fenced("", "print(1)"),
                "```python\ndef f():\n    return 1\n", fenced("go", "package main\nfunc main() {}"))
    assert [(g["check"], g["language"]) for g in got[:4]] == [
        ("unknown", None), ("unknown", "sql"), ("unknown", None), ("fail", "python")]
    assert got[3]["check_result"].startswith("incomplete answer") and got[3]["error_type"] is None
    assert got[4]["check"] == ("unknown" if not available("go") else "pass")


OTHER = [
    ("c", "#include <stdio.h>\nint main(void) { printf(\"%d\\n\", 6 * 7); return 0; }", "pass", None),
    ("c", "int main(void) { return y; }", "fail", "Name Error"),
    ("c", "int main(void) { return 0 }", "fail", "Syntax Error"),
    ("cpp", "#include <iostream>\nint main() { std::cout << 42 << std::endl; }", "pass", None),
    ("java", "public class Main { public static void main(String[] a) { System.out.println(42); } }", "pass", None),
    ("java", "public class Main { public static void main(String[] a) { String s = 1; } }", "fail", "Type Error"),
    ("javascript", "console.log(41 + 1)", "pass", None),
    ("js", "console.log(missing)", "fail", "Name Error"),
    ("javascript", "null.f()", "fail", "Type Error"),
]


@pytest.mark.parametrize("language", sorted({"c", "cpp", "java", "javascript"}))
def test_other_languages_with_a_toolchain_compile_and_run(language):
    cases = [c for c in OTHER if c[0] in (language, "js" if language == "javascript" else language)]
    installed = available(language)
    got = check(*[fenced(lang, code) for lang, code, _, _ in cases])
    for (lang, code, status, error), g in zip(cases, got):
        assert g["language"] == language
        assert (g["check"], g["error_type"]) == ((status, error) if installed else ("unknown", None)), code
