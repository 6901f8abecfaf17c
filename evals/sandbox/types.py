"""The sandbox's data types: what to run (a program and its tests), under which limits, and what came out.

These are the contract between the compiler's execute stages, the evaluator and the sandbox itself.
A task's tests are stored in the corpus as ``TestSpec.to_json()`` and read back with
``TestSpec.from_json``; nothing else about them is assumed anywhere.
"""

from __future__ import annotations

import enum
import json
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal

Visibility = Literal["seen", "hidden"]
Style = Literal["humaneval", "mbpp", "io", "evalplus", "run"]


_SCALARS = (str, int, float, bool, type(None))


def plain_dict(obj, nested: str | None = None) -> dict[str, Any]:
    """``dataclasses.asdict(obj)`` without its deep copies when every field but ``nested`` holds
    a string, a number or None (the sandbox builds these for every job); otherwise ``asdict``
    itself. The caller converts ``nested`` itself."""
    names = _FIELD_NAMES.get(type(obj))
    if names is None:
        names = _FIELD_NAMES.setdefault(type(obj), tuple(f.name for f in fields(obj)))
    d = {name: getattr(obj, name) for name in names}
    if all(type(v) in _SCALARS for k, v in d.items() if k != nested):
        return d
    return asdict(obj)


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


@dataclass(frozen=True)
class TestCase:
    """One test.

    - ``kind="assert"``: ``code`` is a Python statement (``assert f(1) == 2``), MBPP style.
    - ``kind="io"``: ``call`` is an expression (``f(1, 2)``) and ``expected`` the text of its value as
      PERsD writes it: ``str(value)``, or the printed output when the value is None (the
      sandbox's ``ExecResult.outputs`` give exactly that); the child returns the output and the
      parent compares. ``expected=None`` records the output without comparing (oracle runs).
    - ``kind="input"``: ``inputs`` is a JSON list of positional arguments for the entry point and
      ``expected`` the JSON-encoded expected value (EvalPlus style, compared with ``atol``);
      plain JSON or the sandbox's tagged encoding (``ExecResult.outputs`` of a reference run),
      which keeps tuples, sets, NaN and big integers. ``expected=None`` records without comparing.
    """

    __test__ = False                    # not a pytest test class, despite the name

    kind: Literal["assert", "io", "input"]
    code: str | None = None
    call: str | None = None
    inputs: str | None = None
    expected: str | None = None
    visibility: Visibility = "hidden"


@dataclass(frozen=True)
class TestSpec:
    """All the tests of one task in one style.

    - ``humaneval``: ``check`` is the source defining ``check(candidate)``; it is called with the
      entry point. ``cases`` may hold extra assert cases (for instance the docstring examples,
      marked ``seen``). ``check`` itself counts as hidden.
    - ``mbpp``: ``setup`` (test imports / setup code) then each assert case.
    - ``io``: each io case, stopping at the first failure (PERsD feedback semantics).
    - ``evalplus``: each input case against ``expected`` with ``atol``.
    - ``run``: the program must compile and run to completion (no tests). ``language`` selects
      the toolchain (python, c, cpp, java, go, javascript, typescript); the other styles are
      Python only.
    """

    __test__ = False                    # not a pytest test class, despite the name

    style: Style
    entry_point: str | None = None
    setup: str = ""
    check: str = ""
    cases: tuple[TestCase, ...] = ()
    atol: float = 0.0
    language: str = "python"

    def select(self, visibility: Visibility) -> "TestSpec":
        """The same spec restricted to the cases of one visibility (``check`` is hidden)."""
        cases = tuple(c for c in self.cases if c.visibility == visibility)
        check = self.check if visibility == "hidden" else ""
        return replace(self, cases=cases, check=check)

    @property
    def n_tests(self) -> int:
        return len(self.cases) + (1 if self.check else 0)

    def to_dict(self) -> dict[str, Any]:
        d = plain_dict(self, nested="cases")
        d["cases"] = [plain_dict(c) for c in self.cases]
        if d["language"] == "python":      # keeps the serialised form of Python specs unchanged
            del d["language"]
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TestSpec":
        cases = tuple(TestCase(**c) for c in d.get("cases", ()))
        return cls(**{**d, "cases": cases})

    @classmethod
    def from_json(cls, s: str) -> "TestSpec":
        return cls.from_dict(json.loads(s))


@dataclass(frozen=True)
class Limits:
    cpu_seconds: float = 5.0       # CPU time, not wall clock
    memory_mb: int = 1024          # address space
    max_processes: int = 16
    max_file_mb: int = 16
    max_open_files: int = 64
    max_output_bytes: int = 64 * 1024   # per stream; beyond it the stream is truncated with a marker
    wall_seconds: float | None = None   # safety net only; default derived from cpu_seconds


class Status(str, enum.Enum):
    PASSED = "passed"
    FAILED = "failed"              # a test did not hold
    ERROR = "error"                # an exception other than a test failure
    TIMEOUT = "timeout"
    MEMORY = "memory"
    OUTPUT_LIMIT = "output_limit"
    KILLED = "killed"
    SYNTAX_ERROR = "syntax_error"
    SKIPPED = "skipped"            # nothing ran: the language's toolchain is not installed here


@dataclass(frozen=True)
class ExecResult:
    status: Status
    passed: bool
    n_passed: int = 0
    n_total: int = 0
    first_failure: dict[str, Any] | None = None  # {"input","output","expected"} or {"error_type","message"}
    feedback: str = ""             # PERsD feedback text for the first failure ("" when passed)
    stdout: str = ""
    stderr: str = ""
    cpu_s: float = 0.0
    wall_s: float = 0.0
    isolation: str = ""            # the isolation level actually used, e.g. "bwrap+rlimits"
    cached: bool = False
    outputs: list[Any] | None = None   # io: output texts; evalplus: encoded values (cases that ran)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["status"] = self.status.value
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ExecResult":
        return cls(**{**d, "status": Status(d["status"])})


@dataclass(frozen=True)
class Job:
    """One program and its tests; ``code`` is the whole candidate program (imports included)."""

    code: str
    tests: TestSpec = field(default_factory=lambda: TestSpec(style="run"))
    limits: Limits = field(default_factory=Limits)
