"""End to end on the real embedded model: GGUF conversion, cached resolution, loading, generation."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from compiler.llm.transformers_backend import TransformersBackend
from compiler.llm.types import LLMRequest
from compiler.recipe.schema import ModelConfig
from evals import models
from evals.generate import generate
from evals.models import EMBEDDED_MODEL, load_model, resolve_model

pytestmark = pytest.mark.slow

ASK = [{"role": "user", "content": "Write a Python function factorial(n) that returns n!."}]


def test_conversion_is_a_plain_float32_checkpoint(embedded_model_dir: Path) -> None:
    assert (embedded_model_dir / "model.safetensors").is_file()
    assert (embedded_model_dir / models.CONVERSION_RECORD).is_file()
    model, tokenizer = load_model(str(embedded_model_dir))
    assert getattr(model.config, "quantization_config", None) is None
    assert str(model.dtype) == "torch.float32"
    assert 130e6 < sum(p.numel() for p in model.parameters()) < 140e6
    assert tokenizer.chat_template and tokenizer.eos_token == "<|im_end|>"


def test_name_resolves_from_the_cache(embedded_model_dir: Path, monkeypatch) -> None:
    monkeypatch.setenv(models.MODELS_ENV, str(embedded_model_dir.parent))
    weights = embedded_model_dir / "model.safetensors"
    before = weights.stat().st_mtime_ns
    monkeypatch.setattr(models, "convert_gguf", lambda *_: pytest.fail("converted again"))
    assert resolve_model(EMBEDDED_MODEL) == str(embedded_model_dir)
    assert weights.stat().st_mtime_ns == before


def test_greedy_writes_a_python_function(embedded_model_dir: Path) -> None:
    model, tokenizer = load_model(str(embedded_model_dir))
    row = generate(model, tokenizer, [ASK], max_new_tokens=96, stop=["\n```"])[0]
    assert row.finish_reason == "stop"  # the closing fence was reached
    code = row.text.split("```python\n", 1)[-1]
    tree = ast.parse(code)
    assert any(isinstance(node, ast.FunctionDef) and node.name == "factorial" for node in tree.body)


def test_backend_serves_the_embedded_model(embedded_model_dir: Path, monkeypatch) -> None:
    monkeypatch.setenv(models.MODELS_ENV, str(embedded_model_dir.parent))
    backend = TransformersBackend(ModelConfig(model=EMBEDDED_MODEL, batch_size=2))
    reqs = [LLMRequest.chat([(m["role"], m["content"]) for m in ASK], max_tokens=40, stop=("```\n",)),
            LLMRequest(prompt="def add(a, b):\n", max_tokens=12)]
    done = backend.complete_batch(reqs)
    assert "def factorial" in done[0].text and done[0].usage.prompt_tokens > 10
    assert all(c.usage.completion_tokens > 0 for c in done)
