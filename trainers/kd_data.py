"""Knowledge-distillation batches: KD records → token ids for the student and the teacher, and the
collator that pads them so the two models' logits line up without copying.

A record is a ``prompt``/``completion`` pair (or ``messages``), optionally with ``teacher_prompt`` (the
teacher-side prompt) and ``teacher_topk`` (the teacher's top-k log-probabilities captured at compile
time). Each row becomes

- ``input_ids``: the student's prompt, then the completion, then what closes it (the chat template's
  end of turn, or EOS for a plain model); ``completion_start`` marks where the completion begins;
- ``teacher_input_ids`` (``teacher_logits_on: teacher_prompt``): the teacher-side prompt, then the
  same completion ids;
- ``topk_ids`` / ``topk_logprobs`` (``teacher_from: corpus``): per completion position the teacher's
  top-k token ids and log-probabilities. The completion's ids are then the teacher's own tokens
  (mapped to ids by their text), so every distribution sits on the token it produced; the tokens
  the teacher's list does not cover, and the closing tokens, have none.

The collator pads on the left, so every sequence ends in the last column: the student's and the
teacher's completion tokens then occupy the same trailing columns whatever the two prompts' lengths,
and aligning their logits is a slice. Position ids follow the attention mask.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from trainers.errors import TrainError

IGNORE = -100
TOKEN_ID_PREFIX = "token_id:"     # vLLM's --return-tokens-as-token-ids spelling


# ---------------------------------------------------------------------------------------------
# text


@dataclass(frozen=True)
class Rendered:
    """A prompt and its completion as the model reads them: ``tail`` closes the completion."""

    prompt: str
    completion: str
    tail: str


def render(tokenizer: Any, prompt: Any, completion: Any, *, chat: bool) -> Rendered:
    """Render a shaped pair (see :func:`trainers.data.shape_for_student`) as text."""
    if not chat:
        return Rendered(prompt, completion, "")
    head = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
    whole = tokenizer.apply_chat_template(prompt + completion, tokenize=False)
    text = completion[-1]["content"]
    at = len(head) + len(text)
    if not whole.startswith(head) or whole[len(head):at] != text:
        raise TrainError("the chat template does not render the prompt, then the completion, verbatim: "
                         "train with chat: false")
    return Rendered(head, text, whole[at:])


def ids_of(tokenizer: Any, text: str, *, special: bool = False) -> list[int]:
    return list(tokenizer(text, add_special_tokens=special)["input_ids"]) if text else []


# ---------------------------------------------------------------------------------------------
# the teacher's top-k


class TokenMap:
    """Token text → id for a tokenizer's vocabulary (texts that several ids share are left out);
    ``token_id:N`` is id N."""

    def __init__(self, tokenizer: Any):
        ids: dict[str, int] = {}
        shared: set[str] = set()
        for i in range(len(tokenizer)):
            text = tokenizer.decode([i])
            if text in ids:
                shared.add(text)
            ids[text] = i
        self.ids = {t: i for t, i in ids.items() if t not in shared}
        self.size = len(tokenizer)

    def get(self, token: str) -> int | None:
        if token.startswith(TOKEN_ID_PREFIX) and token[len(TOKEN_ID_PREFIX):].isdigit():
            value = int(token[len(TOKEN_ID_PREFIX):])
            return value if value < self.size else None
        return self.ids.get(token)


def teacher_tokens(topk: dict[str, Any], token_map: TokenMap, k: int) -> tuple[list[int], list[list[int]], list[list[float]]]:
    """(ids of the teacher's generated tokens, top-k ids, top-k log-probabilities) for the leading
    tokens the map knows; alternatives it does not know are left out (their mass joins the rest)."""
    ids, top_ids, top_lps = [], [], []
    for token, alts, lps in zip(topk["token"], topk["top_token"], topk["top_logprob"]):
        own = token_map.get(token)
        if own is None:
            break
        row: dict[int, float] = {}
        for alt, lp in zip(alts, lps):
            alt_id = token_map.get(alt)
            if alt_id is not None and alt_id not in row:
                row[alt_id] = float(lp)
        ids.append(own)
        top_ids.append((list(row) + [-1] * k)[:k])
        top_lps.append((list(row.values()) + [0.0] * k)[:k])
    return ids, top_ids, top_lps


# ---------------------------------------------------------------------------------------------
# rows


@dataclass(frozen=True)
class Encoder:
    """Turns shaped rows into token ids (one row at a time); ``None`` for a row that cannot be
    trained on (its prompt alone fills ``max_length``, or nothing is left to learn)."""

    tokenizer: Any
    chat: bool
    max_length: int | None
    token_map: TokenMap | None = None
    k: int = 0

    def prompt_ids(self, text: str) -> list[int]:
        return ids_of(self.tokenizer, text, special=not self.chat)

    def encode(self, prompt: Any, completion: Any, teacher_prompt: Any = None,
               topk: dict[str, Any] | None = None) -> dict[str, Any] | None:
        shown = render(self.tokenizer, prompt, completion, chat=self.chat)
        body, top_ids, top_lps = self._completion(shown.completion, topk)
        tail = ids_of(self.tokenizer, shown.tail) + ([] if self.chat else [self.tokenizer.eos_token_id])
        student = self.prompt_ids(shown.prompt)
        completion_ids = self._fit(body + tail, len(student))
        if not completion_ids:
            return None
        row: dict[str, Any] = {"input_ids": student + completion_ids, "completion_start": len(student)}
        if teacher_prompt is not None:
            own = render(self.tokenizer, teacher_prompt, completion, chat=self.chat).prompt
            row["teacher_input_ids"] = self.prompt_ids(own) + completion_ids
        if self.token_map is not None:
            pad = [[-1] * self.k] * (len(completion_ids) - len(top_ids))
            row["topk_ids"] = (top_ids + pad)[: len(completion_ids)]
            row["topk_logprobs"] = (top_lps + [[0.0] * self.k] * len(pad))[: len(completion_ids)]
        return row

    def _completion(self, text: str, topk: dict[str, Any] | None) -> tuple[list[int], list, list]:
        """The completion's ids: the teacher's own tokens where its top-k covers them, the rest
        tokenized; and the top-k of the covered ones."""
        if self.token_map is None or not topk:
            return ids_of(self.tokenizer, text), [], []
        ids, top_ids, top_lps = teacher_tokens(topk, self.token_map, self.k)
        covered = len("".join(topk["token"][: len(ids)]))
        return ids + ids_of(self.tokenizer, text[covered:]), top_ids, top_lps

    def _fit(self, completion: list[int], prompt_len: int) -> list[int]:
        if self.max_length is None:
            return completion
        return completion[: max(0, self.max_length - prompt_len)]


# ---------------------------------------------------------------------------------------------
# batches


def left_pad(rows: list[list[int]], value: int) -> torch.Tensor:
    width = max(len(r) for r in rows)
    return torch.tensor([[value] * (width - len(r)) + r for r in rows], dtype=torch.long)


def positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position ids that start at 0 on each row's first real token (left padding)."""
    return (attention_mask.long().cumsum(-1) - 1).clamp_min(0)


@dataclass
class KDCollator:
    """Pads KD rows on the left into tensors: ``input_ids``, ``attention_mask``, ``labels`` (-100 on
    the prompt and padding), ``prompts``/``prompt_attention_mask`` (for on-policy sampling), and the
    teacher's inputs and top-k when the rows have them."""

    pad_token_id: int

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        ids = [r["input_ids"] for r in rows]
        batch = {"input_ids": left_pad(ids, self.pad_token_id),
                 "attention_mask": left_pad([[1] * len(r) for r in ids], 0)}
        labels = [[IGNORE] * r["completion_start"] + r["input_ids"][r["completion_start"]:] for r in rows]
        batch["labels"] = left_pad(labels, IGNORE)
        prompts = [r["input_ids"][: r["completion_start"]] for r in rows]
        batch["prompts"] = left_pad(prompts, self.pad_token_id)
        batch["prompt_attention_mask"] = left_pad([[1] * len(p) for p in prompts], 0)
        if "teacher_input_ids" in rows[0]:
            teacher = [r["teacher_input_ids"] for r in rows]
            batch["teacher_input_ids"] = left_pad(teacher, self.pad_token_id)
            batch["teacher_attention_mask"] = left_pad([[1] * len(t) for t in teacher], 0)
        if "topk_ids" in rows[0]:
            batch.update(self._topk(rows, batch["input_ids"].shape[1]))
        return batch

    @staticmethod
    def _topk(rows: list[dict[str, Any]], width: int) -> dict[str, torch.Tensor]:
        k = len(rows[0]["topk_ids"][0])
        ids = torch.full((len(rows), width, k), -1, dtype=torch.long)
        lps = torch.zeros((len(rows), width, k), dtype=torch.float32)
        for i, r in enumerate(rows):
            n = len(r["topk_ids"])
            ids[i, width - n:] = torch.tensor(r["topk_ids"], dtype=torch.long)
            lps[i, width - n:] = torch.tensor(r["topk_logprobs"], dtype=torch.float32)
        return {"topk_ids": ids, "topk_logprobs": lps}
