"""KD batches: the teacher's tokens and top-k mapped onto the tokenizer, truncation, and left padding
that lines the student's and the teacher's completions up in the same trailing columns."""

from __future__ import annotations

import pytest
import torch

from tests.tiny_models import build_tokenizer
from trainers.kd_data import Encoder, KDCollator, TokenMap, positions, teacher_tokens


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer(chat=False)


def pieces(tok, text):
    ids = tok(text, add_special_tokens=False)["input_ids"]
    return ids, [tok.decode([i]) for i in ids]


def test_token_map_reads_texts_and_token_id_spellings(tok):
    token_map = TokenMap(tok)
    ids, texts = pieces(tok, "def add(a, b):")
    assert [token_map.get(t) for t in texts] == ids
    assert token_map.get(f"token_id:{ids[0]}") == ids[0] and token_map.get("token_id:99999") is None
    assert token_map.get("no such token text at all") is None


def test_teacher_tokens_stop_at_an_unknown_token_and_drop_unknown_alternatives(tok):
    ids, texts = pieces(tok, "return x")
    topk = {"token": [*texts, "\u2603unknown"], "top_token": [[texts[0], "??zz??", texts[-1]]] * (len(texts) + 1),
            "top_logprob": [[-0.1, -2.0, -3.0]] * (len(texts) + 1)}
    got_ids, top_ids, top_lps = teacher_tokens(topk, TokenMap(tok), k=3)
    assert got_ids == ids and len(top_ids) == len(ids)
    assert top_ids[0] == [ids[0], ids[-1], -1] and top_lps[0] == [-0.1, -3.0, 0.0]


def test_encoder_uses_the_teachers_tokens_and_marks_the_rest(tok):
    text = "def f(x):\n    return x\n"
    ids, texts = pieces(tok, "def f(x):")                 # the top-k covers only the first line
    topk = {"token": texts, "top_token": [[t] for t in texts], "top_logprob": [[-0.5]] * len(texts)}
    enc = Encoder(tok, chat=False, max_length=None, token_map=TokenMap(tok), k=2)
    row = enc.encode("# task\n", text, "# teacher task\n", topk)
    start = row["completion_start"]
    completion = row["input_ids"][start:]
    assert completion[: len(ids)] == ids and completion[-1] == tok.eos_token_id
    assert tok.decode(completion[:-1]) == text
    assert row["topk_ids"][: len(ids)] == [[i, -1] for i in ids]
    assert row["topk_ids"][len(ids):] == [[-1, -1]] * (len(completion) - len(ids))
    assert row["teacher_input_ids"][-len(completion):] == completion


def test_encoder_truncates_the_completion_and_skips_a_prompt_that_fills_max_length(tok):
    enc = Encoder(tok, chat=False, max_length=12, token_map=None)
    prompt = "# a short prompt\n"
    row = enc.encode(prompt, "x = 1\n" * 20)
    assert len(row["input_ids"]) == 12 and row["completion_start"] == len(tok(prompt)["input_ids"])
    assert enc.encode("word " * 40, "x = 1\n") is None


def test_collator_left_pads_so_completions_end_together(tok):
    rows = [{"input_ids": [5, 6, 7, 8], "completion_start": 2, "teacher_input_ids": [9, 9, 9, 7, 8],
             "topk_ids": [[7, 1], [8, -1]], "topk_logprobs": [[-0.1, -2.0], [-0.2, 0.0]]},
            {"input_ids": [5, 6, 7, 8, 10, 11], "completion_start": 5, "teacher_input_ids": [9, 11],
             "topk_ids": [[11, -1]], "topk_logprobs": [[-0.3, 0.0]]}]
    b = KDCollator(pad_token_id=0)(rows)
    assert b["input_ids"].tolist() == [[0, 0, 5, 6, 7, 8], [5, 6, 7, 8, 10, 11]]
    assert b["labels"].tolist() == [[-100, -100, -100, -100, 7, 8], [-100] * 5 + [11]]
    assert b["teacher_input_ids"].tolist() == [[9, 9, 9, 7, 8], [0, 0, 0, 9, 11]]
    assert b["prompts"].tolist() == [[0, 0, 0, 5, 6], [5, 6, 7, 8, 10]]
    assert b["topk_ids"][0, -2:].tolist() == [[7, 1], [8, -1]] and b["topk_ids"][0, :4].eq(-1).all()
    assert b["topk_ids"][1, -1].tolist() == [11, -1] and b["topk_logprobs"][1, -1, 0] == pytest.approx(-0.3)
    assert positions(b["attention_mask"]).tolist() == [[0, 0, 0, 1, 2, 3], [0, 1, 2, 3, 4, 5]]
    assert torch.equal(b["attention_mask"][0], torch.tensor([0, 0, 1, 1, 1, 1]))
