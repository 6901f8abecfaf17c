"""The model under evaluation: loaded once, asked for many answers, each from its own seeded stream.

Generation goes through :func:`evals.generate.generate` (vLLM when the machine has it and a GPU,
batched transformers otherwise). Every answer has a seed derived from (run seed, task, sample,
step), so a sample's text does not depend on which other prompts share its batch or on the order
of the run; with greedy decoding the seed is irrelevant and identical inputs are generated once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Sequence

from evals.completions import ModelInput, PromptFormat, choose_format, stop_strings
from evals.generate import Generation, generate


def sample_seed(base: int, task_id: str, sample: int, step: int) -> int:
    """A 63-bit seed for one answer, stable across runs and machines."""
    digest = hashlib.sha256(f"{base}\x00{task_id}\x00{sample}\x00{step}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


@dataclass(frozen=True)
class Decoding:
    """How answers are sampled."""

    temperature: float = 0.0
    top_p: float = 0.95
    max_new_tokens: int = 512
    batch_size: int = 8

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0


class Student:
    """A loaded model and tokenizer plus the prompt format and decoding settings of one run."""

    def __init__(self, model: Any, tokenizer: Any, fmt: PromptFormat, decoding: Decoding,
                 *, progress: bool = False):
        self.model, self.tokenizer, self.format = model, tokenizer, fmt
        self.decoding, self.progress = decoding, progress

    @classmethod
    def load(cls, name: str, requested_format: str, decoding: Decoding, *, engine: str = "auto",
             progress: bool = False) -> "Student":
        """Load ``name`` (embedded model, local directory or Hub id) and settle the prompt format."""
        from evals.models import apply_torch_threads, load_model

        apply_torch_threads()
        model, tokenizer = load_model(name, engine=engine)  # type: ignore[arg-type]
        return cls(model, tokenizer, choose_format(requested_format, tokenizer), decoding, progress=progress)

    def answer(self, inputs: Sequence[ModelInput], seeds: Sequence[int]) -> list[Generation]:
        """One generation per input, in order."""
        if not inputs:
            return []
        keys = [self._key(inp, seed) for inp, seed in zip(inputs, seeds)]
        first: dict[tuple[str, int], ModelInput] = {}
        for key, inp in zip(keys, inputs):
            first.setdefault(key, inp)
        unique = list(first)
        index = {key: i for i, key in enumerate(unique)}
        made = generate(
            self.model, self.tokenizer, [first[k].value for k in unique],
            max_new_tokens=self.decoding.max_new_tokens, temperature=self.decoding.temperature,
            top_p=self.decoding.top_p, stop=stop_strings(self.format), seeds=[k[1] for k in unique],
            batch_size=self.decoding.batch_size, chat=self.format == "chat", progress=self.progress)
        return [made[index[key]] for key in keys]

    def _key(self, inp: ModelInput, seed: int) -> tuple[str, int]:
        """Greedy answers depend on the input alone, so they share one key (and one generation)."""
        text = inp.prompt if inp.messages is None else repr(inp.messages)
        return (text, 0 if self.decoding.greedy else seed)


__all__ = ["Decoding", "Student", "sample_seed"]
