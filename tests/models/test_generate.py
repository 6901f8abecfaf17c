"""Batched generation on the tiny random models: determinism, stop strings, EOS, chat vs raw."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from evals.generate import Generation, GenerationError, encode_input, generate, render_chat
from evals.models import load_model

CHAT = [{"role": "user", "content": "Write a function that adds two numbers."}]
INPUTS = [
    "def add(a, b):\n",
    CHAT,
    "x",
    'def is_palindrome(text: str) -> bool:\n    """Return True if text reads the same backwards."""\n',
    [{"role": "system", "content": "You write Python."}, {"role": "user", "content": "Reverse a list."}],
]


@pytest.fixture(scope="module")
def chat_model(tiny_model_dir: Path):
    return load_model(str(tiny_model_dir))


@pytest.fixture(scope="module")
def base_model(tiny_base_model_dir: Path):
    return load_model(str(tiny_base_model_dir))


def _one_by_one(model, tokenizer, inputs, **kw) -> list[Generation]:
    seeds = kw.pop("seeds", None) or list(range(len(inputs)))
    return [generate(model, tokenizer, [x], seeds=[s], **kw)[0] for x, s in zip(inputs, seeds)]


def test_greedy_matches_transformers_generate(chat_model) -> None:
    model, tokenizer = chat_model
    ids = encode_input(tokenizer, CHAT, None)
    reference = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                               max_new_tokens=24, do_sample=False)
    expected = tokenizer.decode(reference[0, len(ids):], skip_special_tokens=True)
    assert generate(model, tokenizer, [CHAT], max_new_tokens=24)[0].text == expected


@pytest.mark.parametrize("batch_size", [2, 8])
def test_greedy_output_does_not_depend_on_the_batch(chat_model, batch_size: int) -> None:
    model, tokenizer = chat_model
    alone = _one_by_one(model, tokenizer, INPUTS, max_new_tokens=20)
    together = generate(model, tokenizer, INPUTS, max_new_tokens=20, batch_size=batch_size)
    assert together == alone
    assert len({g.text for g in together}) == len(INPUTS)  # the rows really are different


def test_seeded_sampling_is_per_row(chat_model) -> None:
    model, tokenizer = chat_model
    seeds = [11, 12, 13, 14, 15]
    together = generate(model, tokenizer, INPUTS, max_new_tokens=20, temperature=1.0, seeds=seeds)
    assert together == _one_by_one(model, tokenizer, INPUTS, max_new_tokens=20, temperature=1.0, seeds=seeds)
    reordered = generate(model, tokenizer, INPUTS[::-1], max_new_tokens=20, temperature=1.0, seeds=seeds[::-1])
    assert reordered[::-1] == together


def test_different_seeds_give_different_samples(chat_model) -> None:
    model, tokenizer = chat_model
    prompts = [CHAT] * 4
    samples = generate(model, tokenizer, prompts, max_new_tokens=20, temperature=1.0, seeds=[1, 2, 3, 4])
    assert len({s.text for s in samples}) == 4
    again = generate(model, tokenizer, prompts, max_new_tokens=20, temperature=1.0, seeds=[1, 2, 3, 4])
    assert again == samples


def test_tiny_nucleus_is_greedy(chat_model) -> None:
    model, tokenizer = chat_model
    greedy = generate(model, tokenizer, INPUTS, max_new_tokens=16)
    nucleus = generate(model, tokenizer, INPUTS, max_new_tokens=16, temperature=1.0, top_p=1e-6,
                       seeds=[7, 8, 9, 10, 11])
    assert nucleus == greedy


def test_stop_string_cuts_the_text_and_ends_the_row(chat_model) -> None:
    model, tokenizer = chat_model
    full = generate(model, tokenizer, INPUTS, max_new_tokens=30)
    stops = [g.text[10:13] for g in full]  # a piece from the middle of each completion
    for item, whole, stop in zip(INPUTS, full, stops):
        cut = generate(model, tokenizer, [item, "def add(a, b):\n"], max_new_tokens=30, stop=[stop])[0]
        assert cut.text == whole.text[:whole.text.find(stop)]
        assert cut.finish_reason == "stop" and cut.completion_tokens < whole.completion_tokens
    assert {g.finish_reason for g in full} == {"length"}
    assert all(g.completion_tokens == 30 for g in full)


def test_stop_string_never_produced_runs_to_the_limit(chat_model) -> None:
    model, tokenizer = chat_model
    plain = generate(model, tokenizer, [CHAT], max_new_tokens=12)[0]
    with_stop = generate(model, tokenizer, [CHAT], max_new_tokens=12, stop=["\x00never\x00"])[0]
    assert with_stop == plain and plain.finish_reason == "length"


def test_eos_ends_the_row_and_is_not_in_the_text(tiny_model_dir: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)  # a private copy to reconfigure
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    ids = encode_input(tokenizer, CHAT, None)
    produced = model.generate(torch.tensor([ids]), max_new_tokens=10, do_sample=False)[0, len(ids):].tolist()
    step = next(i for i, t in enumerate(produced) if t not in produced[:i] and i >= 3)
    model.generation_config.eos_token_id = [tokenizer.eos_token_id, produced[step]]
    rows = generate(model, tokenizer, [CHAT, "x"], max_new_tokens=10)
    assert rows[0].finish_reason == "stop" and rows[0].completion_tokens == step + 1
    assert rows[0].text == tokenizer.decode(produced[:step], skip_special_tokens=True)


def test_chat_input_is_the_rendered_template(chat_model) -> None:
    model, tokenizer = chat_model
    as_chat = generate(model, tokenizer, [CHAT], max_new_tokens=16)[0]
    rendered = render_chat(tokenizer, CHAT)
    assert rendered.endswith("<|im_start|>assistant\n")
    assert generate(model, tokenizer, [rendered], max_new_tokens=16)[0] == as_chat
    forced = generate(model, tokenizer, [CHAT[0]["content"]], max_new_tokens=16, chat=True)[0]
    assert forced == as_chat
    as_raw = generate(model, tokenizer, [CHAT], max_new_tokens=16, chat=False)[0]
    assert as_raw.prompt_tokens == len(tokenizer(CHAT[0]["content"])["input_ids"])
    assert as_raw.text != as_chat.text


def test_prompt_tokens_count_the_unpadded_prompt(chat_model) -> None:
    model, tokenizer = chat_model
    rows = generate(model, tokenizer, INPUTS, max_new_tokens=4)
    assert [r.prompt_tokens for r in rows] == [len(encode_input(tokenizer, x, None)) for x in INPUTS]


def test_chat_input_needs_a_template(base_model) -> None:
    model, tokenizer = base_model
    with pytest.raises(GenerationError, match="no chat template"):
        generate(model, tokenizer, [CHAT], max_new_tokens=4)
    raw = generate(model, tokenizer, ["def f(x):\n"], max_new_tokens=4)[0]
    assert raw.completion_tokens == 4


def test_context_window_limits_the_completion(base_model) -> None:
    model, tokenizer = base_model
    limit = model.config.max_position_embeddings
    unit = tokenizer(" x")["input_ids"]
    near_full = tokenizer.decode(unit * (limit - 5))
    too_long = tokenizer.decode(unit * (limit + 3))
    rows = generate(model, tokenizer, [near_full, too_long, "x"], max_new_tokens=20)
    assert rows[0].prompt_tokens == limit - 5 and rows[0].completion_tokens == 5
    assert rows[1] == Generation("", "length", limit + 3, 0)
    assert rows[2].completion_tokens == 20


@pytest.mark.parametrize("kw", [{"max_new_tokens": 0}, {"max_new_tokens": 4, "seeds": [1, 2]},
                                {"max_new_tokens": 4, "top_p": 0.0}, {"max_new_tokens": 4, "temperature": -1}])
def test_bad_settings_are_rejected(chat_model, kw) -> None:
    model, tokenizer = chat_model
    with pytest.raises(GenerationError):
        generate(model, tokenizer, ["x"], **kw)


def test_progress_bar_goes_to_stderr(chat_model, capsys) -> None:
    model, tokenizer = chat_model
    generate(model, tokenizer, INPUTS, max_new_tokens=2, batch_size=2, progress=True)
    captured = capsys.readouterr()
    assert captured.out == "" and "5/5" in captured.err
