"""Plain "compiles and runs" (SODA's static view): no tests. A Python program runs as
``__main__`` and passes if its top level finishes without an exception (``sys.exit(0)`` counts
as finishing); other languages are compiled and run by :mod:`..lang` and pass on exit status 0."""

from __future__ import annotations

from .. import lang
from ..harness import Context


def run(ctx: Context) -> None:
    language = ctx.payload.get("language") or "python"
    if language != "python":
        lang.run(ctx, language)
        return
    if ctx.load_program(name="__main__") is None:
        return
    ctx.reporter.emit({"ev": "case", "i": 0, "ok": True})
    ctx.reporter.done()
