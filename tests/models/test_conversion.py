"""The embedded model's one-time conversion: cached, atomic, and safe with concurrent converters.

The GGUF dequantisation itself is slow (about 30 s) and is exercised by the slow end-to-end test;
here the converter is a stand-in that copies the tiny model, so what is tested is the caching,
locking and crash handling around it, with real processes where processes matter.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evals import models
from evals.models import EMBEDDED_MODEL, ensure_embedded_model, load_model, resolve_model

# A child process that converts with a slow stand-in converter which logs each call.
CHILD = """
import os, shutil, sys, time
from pathlib import Path
from evals import models
root, gguf, source, log, delay = sys.argv[1:6]

def convert(_gguf, out):
    with open(log, "a") as handle:
        handle.write(f"{os.getpid()}\\n")
    (out / "config.json").write_text("{}")  # a partial model, as a crash would leave it
    time.sleep(float(delay))
    shutil.copytree(source, out, dirs_exist_ok=True)

models.embedded_gguf_path = lambda: Path(gguf)
models.convert_gguf = convert
print(models.ensure_embedded_model(Path(root)))
"""


@pytest.fixture
def fake_gguf(tmp_path: Path) -> Path:
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF")
    return path


@pytest.fixture
def copying_converter(monkeypatch, tiny_model_dir: Path, fake_gguf: Path) -> list[Path]:
    """Replace the GGUF converter by a copy of the tiny model; returns the list of calls."""
    calls: list[Path] = []

    def convert(_gguf: Path, out: Path) -> None:
        calls.append(out)
        shutil.copytree(tiny_model_dir, out, dirs_exist_ok=True)

    monkeypatch.setattr(models, "embedded_gguf_path", lambda: fake_gguf)
    monkeypatch.setattr(models, "convert_gguf", convert)
    return calls


def _child(root: Path, gguf: Path, source: Path, log: Path, delay: float) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", CHILD, str(root), str(gguf), str(source), str(log),
                             str(delay)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _leftovers(root: Path) -> list[Path]:
    return list(root.glob(f".{EMBEDDED_MODEL}.tmp-*"))


def test_second_resolve_uses_the_cache(copying_converter: list[Path], tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(models.MODELS_ENV, str(tmp_path / "models"))
    first = resolve_model(EMBEDDED_MODEL)
    second = resolve_model(EMBEDDED_MODEL)
    assert first == second == str(tmp_path / "models" / EMBEDDED_MODEL)
    assert len(copying_converter) == 1
    assert (Path(first) / models.CONVERSION_RECORD).is_file()
    model, tokenizer = load_model(EMBEDDED_MODEL)
    assert model.config.hidden_size == 64 and tokenizer.eos_token


def test_failed_conversion_leaves_nothing_behind(monkeypatch, fake_gguf: Path, tmp_path: Path,
                                                 tiny_model_dir: Path) -> None:
    def broken(_gguf: Path, out: Path) -> None:
        (out / "config.json").write_text("{}")
        raise RuntimeError("disk full")

    monkeypatch.setattr(models, "embedded_gguf_path", lambda: fake_gguf)
    monkeypatch.setattr(models, "convert_gguf", broken)
    with pytest.raises(RuntimeError):
        ensure_embedded_model(tmp_path)
    assert not (tmp_path / EMBEDDED_MODEL).exists() and not _leftovers(tmp_path)


def test_killed_converter_is_recovered_from(copying_converter: list[Path], fake_gguf: Path,
                                            tiny_model_dir: Path, tmp_path: Path) -> None:
    root, log = tmp_path / "models", tmp_path / "calls.log"
    child = _child(root, fake_gguf, tiny_model_dir, log, delay=60)
    try:
        _wait_for(lambda: log.exists() and log.read_text().strip())
    finally:
        child.send_signal(signal.SIGKILL)
        child.communicate()
    assert _leftovers(root) and not (root / EMBEDDED_MODEL).exists()
    target = ensure_embedded_model(root)  # the lock died with the child
    assert (target / "model.safetensors").is_file() and not _leftovers(root)
    assert len(copying_converter) == 1


def test_concurrent_converters_convert_once(fake_gguf: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    root, log = tmp_path / "models", tmp_path / "calls.log"
    children = [_child(root, fake_gguf, tiny_model_dir, log, delay=1.0) for _ in range(2)]
    outputs = [child.communicate(timeout=120) for child in children]
    assert [child.returncode for child in children] == [0, 0], outputs
    assert {out.strip() for out, _ in outputs} == {str(root / EMBEDDED_MODEL)}
    assert len(log.read_text().split()) == 1
    assert (root / EMBEDDED_MODEL / "model.safetensors").is_file() and not _leftovers(root)


def test_incomplete_directory_in_the_way_is_replaced(copying_converter: list[Path], tmp_path: Path) -> None:
    stray = tmp_path / EMBEDDED_MODEL
    stray.mkdir()
    (stray / "config.json").write_text("{}")  # no conversion record: not a finished conversion
    target = ensure_embedded_model(tmp_path)
    assert (target / "model.safetensors").is_file() and len(copying_converter) == 1


def _wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.05)

