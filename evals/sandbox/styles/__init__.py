"""One module per test style, parent side: what each style sends into the sandbox (never the
expected values of input/output tests) and how it judges the events that come back.

Every module defines ``payload(spec) -> dict`` and ``judge_case(spec, index, event) ->
(ok, failure)``, where ``failure`` is the first-failure detail when ``ok`` is False, and
``COLLECTS_OUTPUTS``; styles that collect define ``output(event)``, the value recorded in
``ExecResult.outputs`` for each case that ran. The child side of each style lives in ``evals/sandbox/inside/styles``.
"""

from __future__ import annotations

from types import ModuleType

from evals.sandbox.styles import evalplus, humaneval, io, mbpp, run

STYLES: dict[str, ModuleType] = {"humaneval": humaneval, "mbpp": mbpp, "io": io, "evalplus": evalplus, "run": run}

