"""Compile-and-run for languages other than Python (C, C++, Java, Go, JavaScript, TypeScript).

The parent picks the commands (see ``evals/sandbox/toolchains.py``) and only sends jobs whose
toolchain it found; here the source is written into the working directory, compiled, and run with
the confinement and limits already in place (the compiler and the program inherit them). The
program's stdout/stderr go straight to the captured streams; a compile failure is reported as a
syntax error with the compiler's messages.
"""

from __future__ import annotations

import os
import signal

from .harness import Context, clip

_COMPILER_OUTPUT = 1 << 16


def _compile(ctx: Context, command: list[str]) -> bool:
    import subprocess                           # only these jobs need it: keep the server lean

    proc = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, close_fds=True)
    if proc.returncode == 0:
        return True
    text = proc.stdout[:_COMPILER_OUTPUT].decode("utf-8", "replace")
    ctx.reporter.emit({"ev": "syntax", "type": "CompileError", "msg": clip(text), "line": None,
                       "rc": proc.returncode})
    return False


def _signal_error(number: int) -> dict:
    if number in (signal.SIGXCPU, signal.SIGKILL):
        return {"type": "CPUTimeExceeded", "msg": f"killed by signal {signal.Signals(number).name}"}
    if number == signal.SIGXFSZ:
        return {"type": "FileSizeExceeded", "msg": "file size limit exceeded"}
    try:
        name = signal.Signals(number).name
    except ValueError:
        name = str(number)
    return {"type": "Signal", "msg": f"killed by signal {name}"}


def run(ctx: Context, language: str) -> None:
    toolchain = ctx.payload["toolchain"]
    with open(toolchain["source"], "w", encoding="utf-8") as fh:
        fh.write(ctx.payload["code"])
    import subprocess

    os.environ.update(toolchain.get("env") or {})
    if toolchain.get("compile") and not _compile(ctx, toolchain["compile"]):
        return
    code = subprocess.call(toolchain["run"], stdin=subprocess.DEVNULL, close_fds=True)
    if code == 0:
        ctx.reporter.emit({"ev": "case", "i": 0, "ok": True})
        ctx.reporter.done()
    elif code < 0:
        ctx.reporter.emit({"ev": "error", "where": "program", "i": 0, **_signal_error(-code)})
    else:
        ctx.reporter.emit({"ev": "error", "where": "program", "i": 0, "type": "RuntimeError",
                           "msg": f"{language} program exited with status {code}"})
