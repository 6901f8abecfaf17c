"""``emit_soda``: SODA's training sets as variants of one corpus (METHODS §3(b) S1, §3(e)), in TRL's
column conventions: ``SODA``, the preference pairs (``prompt``, ``chosen`` = the correct answer,
``rejected`` = the faulty one) that DPO with an SFT term trains on (the DPO-style stand-in for the
paper's fault-aware contrastive loss), and ``SODA-sft``, the correct answers alone (``prompt``,
``completion``) for correctness-aware SFT.

Records are conversational (lists of ``{role, content}`` messages: the question as the user's, the
answer as the assistant's) when the student has a chat template, as the student is then prompted;
plain strings otherwise. Every record carries its ``cycle``; preference records carry the faulty
answer's ``rejected_error_types``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import polars as pl
from pydantic import Field

from compiler.methods.soda.questions import QUESTION, QUESTION_READS, question_text
from compiler.stages.base import Columns, Params, Stage, StageOutput, derive_id, register
from compiler.stages.format import MESSAGE

if TYPE_CHECKING:
    from compiler.recipe.schema import ModelConfig
    from compiler.runner import StageContext

Variant = Literal["SODA", "SODA-sft"]
VARIANTS: tuple[str, ...] = ("SODA", "SODA-sft")
TEXT_COLUMNS = ("prompt", "chosen", "rejected", "completion")


def record_schema(conversational: bool) -> dict[str, Any]:
    text = pl.List(MESSAGE) if conversational else pl.String
    return {"row_id": pl.String, "parent_ids": pl.List(pl.String), "task_id": pl.String, "source": pl.String,
            "variant": pl.String, **{c: text for c in TEXT_COLUMNS}, "cycle": pl.Int64,
            "rejected_error_types": pl.List(pl.String)}


def student_chats(config: "ModelConfig | None") -> bool:
    """Whether the student answers in chat form: its ``chat`` setting, else an OpenAI-compatible
    endpoint (chat completions) or an in-process model whose tokenizer has a chat template."""
    if config is None:
        return False
    if config.chat is not None:
        return config.chat
    if config.backend == "openai":
        return True
    from transformers import AutoTokenizer

    from evals.models import resolve_model

    tokenizer = AutoTokenizer.from_pretrained(resolve_model(config.model, revision=config.revision))
    return bool(getattr(tokenizer, "chat_template", None))


@register
class EmitSoda(Stage):
    """Writes SODA's training sets as variants of one corpus (``variant`` column): ``SODA``, one
    preference record per kept pair (``prompt`` = the question, ``chosen`` = the teacher's correct
    answer, ``rejected`` = its faulty answer, with ``rejected_error_types``), and ``SODA-sft``, one
    prompt/completion record per correct answer (``sft_from: pairs``: those of kept pairs;
    ``passing``: every correct answer that passed the static check). Records are conversational
    (``{role, content}`` message lists) when ``conversational`` is true or, by default, when the
    student answers in chat form (its `chat` setting, an OpenAI-compatible endpoint, or a chat
    template); each carries its ``cycle`` and links to its question row."""

    name = "emit_soda"
    version = 1
    scope = "frame"

    class Params(Params):
        variants: list[Variant] = Field(default_factory=lambda: list(VARIANTS), min_length=1,
                                        description="the training sets to write")
        sft_from: Literal["pairs", "passing"] = Field(default="pairs", description="SODA-sft's correct "
                                                      "answers: those of kept pairs, or every one that passed "
                                                      "the static check")
        conversational: bool | None = Field(default=None, description="message-list records (null: when "
                                            "the student answers in chat form)")

    @classmethod
    def columns(cls, params: "EmitSoda.Params") -> Columns:
        reads = (*QUESTION_READS, "task_id", "source", "soda_kind", "cycle", "pair_id", "pair_kept",
                 "correct_text", "faulty_text", "rejected_error_types", "correct_check")
        return Columns.of(params, reads=reads, writes=tuple(record_schema(False)), replaces=True)

    def run(self, frame: pl.DataFrame, ctx: "StageContext") -> StageOutput:
        p = self.params
        chat = p.conversational if p.conversational is not None else student_chats(ctx.recipe.student)
        questions = [r for r in frame.filter(pl.col("soda_kind") == QUESTION).iter_rows(named=True)]
        records: list[dict[str, Any]] = []
        for variant in p.variants:
            for row in questions:
                record = self._record(variant, row, chat)
                if record is not None:
                    records.append(record)
        return StageOutput(pl.DataFrame(records, schema=record_schema(chat)))

    def _record(self, variant: str, row: dict[str, Any], chat: bool) -> dict[str, Any] | None:
        def say(role: str, text: str) -> Any:
            return [{"role": role, "content": text}] if chat else text
        base = {"parent_ids": [row["row_id"]], "task_id": row["task_id"], "source": row["source"],
                "variant": variant, "prompt": say("user", question_text(row)), "cycle": row["cycle"]}
        if variant == "SODA":
            if not row["pair_kept"]:
                return None
            return {**base, "row_id": derive_id(row["pair_id"], self.name, variant),
                    "chosen": say("assistant", row["correct_text"]), "rejected": say("assistant", row["faulty_text"]),
                    "rejected_error_types": row["rejected_error_types"]}
        wanted = row["pair_kept"] if self.params.sft_from == "pairs" else row["correct_check"] == "pass"
        if not wanted:
            return None
        return {**base, "row_id": derive_id(row["row_id"], self.name, variant),
                "completion": say("assistant", row["correct_text"])}
