"""Toolchains for the "compiles and runs" style in languages other than Python.

Each language names the binaries it needs; a job whose binaries are missing is not sent to the
sandbox at all and comes back ``skipped``. Compilers run inside the sandbox under the same
limits as the program; the JVM gets flags that keep its address-space reservations under the
memory limit.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from dataclasses import dataclass

_JVM = ["-Xmx256m", "-Xss8m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-XX:CICompilerCount=1",
        "-XX:ReservedCodeCacheSize=64m", "-XX:CompressedClassSpaceSize=64m", "-Xshare:auto"]
EXTENSIONS = {".py": "python", ".c": "c", ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".java": "java",
              ".go": "go", ".js": "javascript", ".mjs": "javascript", ".ts": "typescript"}


@dataclass(frozen=True)
class Toolchain:
    language: str
    binaries: tuple[str, ...]
    min_processes: int = 0        # threads count as processes (JVM, Go runtime, node)


TOOLCHAINS = {
    "python": Toolchain("python", ()),
    "c": Toolchain("c", ("gcc",)),
    "cpp": Toolchain("cpp", ("g++",)),
    "java": Toolchain("java", ("javac", "java"), min_processes=64),
    "go": Toolchain("go", ("go",), min_processes=64),
    "javascript": Toolchain("javascript", ("node",), min_processes=32),
    "typescript": Toolchain("typescript", ("tsc", "node"), min_processes=32),
}


def normalise(language: str) -> str:
    """Canonical language name (``js`` → ``javascript``, ``c++`` → ``cpp`` ...)."""
    aliases = {"py": "python", "js": "javascript", "ts": "typescript", "c++": "cpp", "cxx": "cpp", "golang": "go"}
    key = language.strip().lower()
    return aliases.get(key, key)


def available(language: str) -> bool:
    chain = TOOLCHAINS.get(normalise(language))
    return chain is not None and all(shutil.which(b) for b in chain.binaries)


def _java_class(code: str) -> str:
    match = re.search(r"public\s+(?:final\s+|abstract\s+)*class\s+([A-Za-z_$][\w$]*)", code)
    return match.group(1) if match else "Main"


def commands(language: str, code: str) -> dict:
    """What the child runs: the source file name, the compile command (or None), the run command
    and extra environment variables."""
    language = normalise(language)
    if language == "c":
        return {"source": "main.c", "compile": ["gcc", "-O2", "-std=gnu11", "-o", "prog", "main.c", "-lm"],
                "run": ["./prog"]}
    if language == "cpp":
        return {"source": "main.cpp", "compile": ["g++", "-O2", "-std=gnu++17", "-o", "prog", "main.cpp"],
                "run": ["./prog"]}
    if language == "java":
        name = _java_class(code)
        return {"source": f"{name}.java", "compile": ["javac", *("-J" + f for f in _JVM), f"{name}.java"],
                "run": ["java", *_JVM, "-cp", ".", name]}
    if language == "go":
        return {"source": "main.go", "compile": ["go", "build", "-o", "prog", "main.go"], "run": ["./prog"],
                "env": {"GOCACHE": "gocache", "GOPATH": "gopath", "GOFLAGS": "-mod=mod", "CGO_ENABLED": "0"}}
    if language == "javascript":
        return {"source": "main.js", "compile": None, "run": ["node", "main.js"]}
    if language == "typescript":
        return {"source": "main.ts", "compile": ["tsc", "--outDir", ".", "main.ts"], "run": ["node", "main.js"]}
    raise ValueError(f"unsupported language {language!r}")


@functools.lru_cache(maxsize=None)
def version(language: str) -> str:
    """The toolchain's version line (part of the execution cache key)."""
    chain = TOOLCHAINS.get(normalise(language))
    if chain is None or not chain.binaries or not available(language):
        return ""
    flag = "version" if chain.binaries[0] == "go" else "--version"
    try:
        out = subprocess.run([chain.binaries[0], flag], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return ""
    lines = (out.stdout or out.stderr).strip().splitlines()
    return lines[0] if lines else ""
