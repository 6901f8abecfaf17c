"""One module per test style, child side. Each defines ``run(ctx)`` and reports through
``ctx.reporter``: a ``case`` event per test that ran, an ``error``/``syntax``/``tamper`` event on
the first failure, and ``done`` when it finished normally."""

from . import evalplus, humaneval, io, mbpp, run

STYLES = {"humaneval": humaneval, "mbpp": mbpp, "io": io, "evalplus": evalplus, "run": run}
