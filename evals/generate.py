"""Batched generation from an in-process model (transformers, or a ``vllm.LLM`` on a GPU machine).

Used by the compiler's in-process backends and by the evaluator. Reproducibility is the point: the
compiler caches each request's answer and corpora must be rebuildable, so a row's output must not
depend on which other rows share its batch. Greedy decoding (T=0) takes the arg-max; sampling
(T>0) draws every row from its own seeded random stream. ``model.generate`` samples all rows from
one shared stream, so this module runs its own small decoding loop over the KV cache.

Inputs are plain strings (raw prompts: base students, PERsD's completion-style prompt) or chat
message lists (rendered with the tokenizer's chat template and its generation prompt). Prompts are
left-padded and batched by length; a stop string cuts the text and ends its row, and so does EOS.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

ChatInput = Sequence[Mapping[str, str]]
Input = str | ChatInput
FinishReason = Literal["stop", "length"]


@dataclass(frozen=True)
class Generation:
    """One generated completion. ``completion_tokens`` counts every token produced (a final EOS
    included), ``prompt_tokens`` the unpadded prompt."""

    text: str
    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int


class GenerationError(ValueError):
    """The inputs cannot be generated from (no chat template, empty prompt, bad settings)."""


@dataclass(frozen=True)
class Sampling:
    """Decoding settings shared by one call."""

    max_new_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0


def generate(model: Any, tokenizer: Any, inputs: Sequence[Input], *, max_new_tokens: int,
             temperature: float = 0.0, top_p: float = 1.0, stop: Sequence[str] = (),
             seeds: Sequence[int] | None = None, batch_size: int = 8, chat: bool | None = None,
             progress: bool = False) -> list[Generation]:
    """Generate one completion per input, in input order.

    ``chat``: None renders message lists with the chat template and leaves strings raw; True also
    wraps a string as a single user message; False joins message contents into one raw prompt.
    ``seeds`` gives each row its own random stream at T>0 (default: the row's index in ``inputs``,
    so pass seeds when the output must not depend on input order). ``progress`` shows a bar on
    stderr. ``model`` may also be a ``vllm.LLM`` (``tokenizer`` is then unused).
    """
    settings = _check_settings(max_new_tokens, temperature, top_p, stop, batch_size)
    row_seeds = _row_seeds(seeds, len(inputs))
    if _is_vllm(model):
        return _generate_vllm(model, inputs, settings, row_seeds, chat)
    prompts = [encode_input(tokenizer, item, chat) for item in inputs]
    results: list[Generation | None] = [None] * len(prompts)
    with _progress_bar(len(prompts), progress) as bar:
        for batch in length_sorted_batches(prompts, batch_size):
            rows = decode_batch(model, tokenizer, [prompts[i] for i in batch],
                                [row_seeds[i] for i in batch], settings)
            for index, row in zip(batch, rows):
                results[index] = row
            bar.update(len(batch))
    return [r for r in results if r is not None]


def _check_settings(max_new_tokens: int, temperature: float, top_p: float, stop: Sequence[str],
                    batch_size: int) -> Sampling:
    if max_new_tokens < 1 or batch_size < 1:
        raise GenerationError("max_new_tokens and batch_size must be at least 1")
    if temperature < 0 or not 0 < top_p <= 1:
        raise GenerationError(f"need temperature >= 0 and 0 < top_p <= 1, got {temperature}, {top_p}")
    if isinstance(stop, str):
        stop = (stop,)
    return Sampling(max_new_tokens, float(temperature), float(top_p), tuple(s for s in stop if s))


def _row_seeds(seeds: Sequence[int] | None, count: int) -> list[int]:
    if seeds is None:
        return list(range(count))
    if len(seeds) != count:
        raise GenerationError(f"got {len(seeds)} seeds for {count} inputs")
    return [int(s) for s in seeds]


# ---------------------------------------------------------------------------------------------
# inputs


def encode_input(tokenizer: Any, item: Input, chat: bool | None) -> list[int]:
    """Token ids of one input: a chat-template rendering or a raw prompt (see :func:`generate`)."""
    if isinstance(item, str):
        if chat:
            return _encode_chat(tokenizer, [{"role": "user", "content": item}])
        return _encode_raw(tokenizer, item)
    messages = [dict(m) for m in item]
    if chat is False:
        return _encode_raw(tokenizer, "\n\n".join(m["content"] for m in messages))
    return _encode_chat(tokenizer, messages)


def render_chat(tokenizer: Any, messages: list[dict[str, str]]) -> str:
    """The prompt text the chat template makes of ``messages``, ending with the assistant cue."""
    if not getattr(tokenizer, "chat_template", None):
        raise GenerationError("the tokenizer has no chat template: give plain prompts or set chat: false")
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def _encode_chat(tokenizer: Any, messages: list[dict[str, str]]) -> list[int]:
    # the template writes its own special tokens, so the tokenizer must not add more
    ids = tokenizer(render_chat(tokenizer, messages), add_special_tokens=False)["input_ids"]
    return _nonempty(tokenizer, list(ids))


def _encode_raw(tokenizer: Any, text: str) -> list[int]:
    return _nonempty(tokenizer, list(tokenizer(text)["input_ids"]))


def _nonempty(tokenizer: Any, ids: list[int]) -> list[int]:
    if ids:
        return ids
    if tokenizer.bos_token_id is not None:
        return [tokenizer.bos_token_id]
    raise GenerationError("an empty prompt cannot be continued (the tokenizer has no BOS token)")


def length_sorted_batches(prompts: Sequence[Sequence[int]], batch_size: int) -> Iterator[list[int]]:
    """Indices of ``prompts`` in batches of similar length (longest first), to waste little on
    padding. Ties keep input order, so batching is itself deterministic."""
    order = sorted(range(len(prompts)), key=lambda i: (-len(prompts[i]), i))
    for start in range(0, len(order), batch_size):
        yield order[start:start + batch_size]


# ---------------------------------------------------------------------------------------------
# one batch: prefill, then one token per step over the KV cache


@dataclass
class _Row:
    """Decoding state of one sequence."""

    prompt_tokens: int
    budget: int
    seed: int
    tokens: list[int] = field(default_factory=list)  # the text's tokens (an ending EOS is not kept)
    produced: int = 0
    finish: FinishReason | None = None


def decode_batch(model: Any, tokenizer: Any, prompts: list[list[int]], seeds: list[int],
                 settings: Sampling) -> list[Generation]:
    """Decode one batch of token-id prompts. Rows drop out of the batch as they finish."""
    import torch

    limit = _context_limit(model)
    rows = [_Row(len(p), min(settings.max_new_tokens, max(0, limit - len(p))), s)
            for p, s in zip(prompts, seeds)]
    for row in rows:
        if row.budget == 0:
            row.finish = "length"  # no room left in the context window
    live = [i for i, row in enumerate(rows) if row.finish is None]
    if live:
        with torch.inference_mode():
            _run(model, tokenizer, [prompts[i] for i in live], [rows[i] for i in live], settings)
    return [_finish(tokenizer, row, settings.stop) for row in rows]


def _run(model: Any, tokenizer: Any, prompts: list[list[int]], rows: list[_Row],
         settings: Sampling) -> None:
    import torch
    from transformers import DynamicCache

    device = model.device
    ids, mask = _left_pad(prompts, _pad_id(tokenizer), device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    cache = DynamicCache(config=model.config)
    streams = [_stream(row.seed, device) for row in rows] if not settings.greedy else None
    stopper = _StopCheck(tokenizer, settings.stop, eos_token_ids(model, tokenizer))
    active = list(range(len(rows)))
    logits = _forward(model, ids, mask, positions, cache)
    while True:
        chosen = _choose(logits, settings, [streams[i] for i in active] if streams else None)
        keep = [j for j, i in enumerate(active) if stopper.push(rows[i], int(chosen[j]))]
        if not keep:
            return
        if len(keep) < len(active):
            index = torch.tensor(keep, device=device)
            cache.batch_select_indices(index)
            mask, positions, chosen = mask[index], positions[index], chosen[index]
            active = [active[j] for j in keep]
        mask = torch.cat([mask, mask.new_ones((len(active), 1))], dim=-1)
        positions = positions[:, -1:] + 1
        logits = _forward(model, chosen.view(-1, 1), mask, positions, cache)


def _forward(model: Any, ids: Any, mask: Any, positions: Any, cache: Any) -> Any:
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=cache,
                use_cache=True, logits_to_keep=1)
    return out.logits[:, -1, :].float()


def _left_pad(prompts: list[list[int]], pad_id: int, device: Any) -> tuple[Any, Any]:
    import torch

    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt):] = torch.tensor(prompt, dtype=torch.long)
        mask[row, width - len(prompt):] = 1
    return ids.to(device), mask.to(device)


def _choose(logits: Any, settings: Sampling, streams: list[Any] | None) -> Any:
    """Next token per row: arg-max when greedy, else one draw from each row's own stream."""
    import torch

    if streams is None:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits / settings.temperature, dim=-1)
    if settings.top_p < 1.0:
        probs = _nucleus(probs, settings.top_p)
    draws = [torch.multinomial(p, 1, generator=g) for p, g in zip(probs, streams)]
    return torch.cat(draws)


def _nucleus(probs: Any, top_p: float) -> Any:
    """Zero every token outside the smallest set whose mass reaches ``top_p`` (the token that
    crosses the threshold is kept). ``multinomial`` renormalises."""
    import torch

    sorted_probs, order = probs.sort(dim=-1, descending=True)
    mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs
    sorted_probs = torch.where(mass_before >= top_p, torch.zeros_like(sorted_probs), sorted_probs)
    return torch.zeros_like(probs).scatter(-1, order, sorted_probs)


def _stream(seed: int, device: Any) -> Any:
    import torch

    generator = torch.Generator(device=device)
    generator.manual_seed(seed & 0xFFFF_FFFF_FFFF_FFFF)
    return generator


# ---------------------------------------------------------------------------------------------
# ending rows: EOS, stop strings, budget


class _StopCheck:
    """Decides after each token whether a row goes on. Stop strings are looked for in the text of
    the last few tokens only, enough to hold the longest stop string."""

    def __init__(self, tokenizer: Any, stop: tuple[str, ...], eos: set[int]):
        self.tokenizer, self.stop, self.eos = tokenizer, stop, eos
        self.window = max((len(s) for s in stop), default=0) + 2

    def push(self, row: _Row, token: int) -> bool:
        row.produced += 1
        if token in self.eos:
            row.finish = "stop"
            return False
        row.tokens.append(token)
        if self.stop and self._stopped(row.tokens):
            row.finish = "stop"
        elif row.produced >= row.budget:
            row.finish = "length"
        return row.finish is None

    def _stopped(self, tokens: list[int]) -> bool:
        tail = self.tokenizer.decode(tokens[-self.window:], skip_special_tokens=True)
        return any(s in tail for s in self.stop)


def _finish(tokenizer: Any, row: _Row, stop: tuple[str, ...]) -> Generation:
    """The row's text, cut before the first stop string."""
    text = tokenizer.decode(row.tokens, skip_special_tokens=True)
    cuts = [text.find(s) for s in stop if s in text]
    if cuts:
        text = text[:min(cuts)]
    return Generation(text, row.finish or "length", row.prompt_tokens, row.produced)


def eos_token_ids(model: Any, tokenizer: Any) -> set[int]:
    """Every token that ends a sequence: the generation config's EOS ids and the tokenizer's."""
    found: set[int] = set()
    config_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for value in (config_eos, tokenizer.eos_token_id):
        if isinstance(value, int):
            found.add(value)
        elif value is not None:
            found.update(int(v) for v in value)
    return found


def _pad_id(tokenizer: Any) -> int:
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if candidate is not None:
            return int(candidate)
    return 0


def _context_limit(model: Any) -> int:
    """The model's context length (prompt plus completion)."""
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return 1 << 30


def _progress_bar(total: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, file=sys.stderr, unit="seq", desc="generate")


# ---------------------------------------------------------------------------------------------
# vLLM (GPU machines): the same contract through vllm.LLM


def _is_vllm(model: Any) -> bool:
    return type(model).__module__.split(".")[0] == "vllm"


def _generate_vllm(llm: Any, inputs: Sequence[Input], settings: Sampling, seeds: list[int],
                   chat: bool | None) -> list[Generation]:
    """Chat inputs go through ``llm.chat`` (the model's template), raw ones through
    ``llm.generate``; each request carries its own seed, so vLLM samples it independently."""
    from vllm import SamplingParams

    params = [SamplingParams(n=1, temperature=settings.temperature, top_p=settings.top_p,
                             max_tokens=settings.max_new_tokens, stop=list(settings.stop) or None,
                             seed=seed) for seed in seeds]
    as_chat = [_vllm_messages(item, chat) for item in inputs]
    chat_rows = [i for i, m in enumerate(as_chat) if m is not None]
    raw_rows = [i for i, m in enumerate(as_chat) if m is None]
    results: dict[int, Generation] = {}
    if chat_rows:
        outs = llm.chat([as_chat[i] for i in chat_rows], [params[i] for i in chat_rows], use_tqdm=False)
        results.update(zip(chat_rows, map(_from_vllm, outs)))
    if raw_rows:
        prompts = [_vllm_raw(inputs[i]) for i in raw_rows]
        outs = llm.generate(prompts, [params[i] for i in raw_rows], use_tqdm=False)
        results.update(zip(raw_rows, map(_from_vllm, outs)))
    return [results[i] for i in range(len(inputs))]


def _vllm_messages(item: Input, chat: bool | None) -> list[dict[str, str]] | None:
    if isinstance(item, str):
        return [{"role": "user", "content": item}] if chat else None
    return None if chat is False else [dict(m) for m in item]


def _vllm_raw(item: Input) -> str:
    return item if isinstance(item, str) else "\n\n".join(m["content"] for m in item)


def _from_vllm(out: Any) -> Generation:
    sample = out.outputs[0]
    finish: FinishReason = "length" if sample.finish_reason == "length" else "stop"
    return Generation(sample.text, finish, len(out.prompt_token_ids or ()), len(sample.token_ids))
