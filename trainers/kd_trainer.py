"""The TRL trainers of a KD run: TRL's ``GKDTrainer`` with its ``compute_loss`` replaced by the loss
library (``trainers/losses.py``), and, for a teacher known only by the top-k log-probabilities in the
corpus, ``SFTTrainer`` with a sparse KD ``compute_loss``.

``KDTrainer`` trains off-policy on the corpus's teacher completions (GKD's ``lmbda = 0``,
``seq_kd = False``). With ``lmbda > 0`` each batch is, with that probability, replaced by the
student's own samples of its prompts (on-policy, as GKD does); the teacher then scores those samples
on the student's prompt. The teacher runs in eval mode, without gradients, on its own inputs when the
batch has them (``teacher_logits_on: teacher_prompt``); the collator pads on the left, so the two
models' logits line up in their trailing columns (see :mod:`trainers.kd_data`).

The loss is summed over the completion tokens and divided by ``num_items_in_batch`` when the
Trainer supplies it (the count over all accumulated micro-batches, which keeps gradient accumulation
exact), else by this batch's count.
"""

from __future__ import annotations

import random
import warnings
from dataclasses import dataclass
from typing import Any

import torch
from trl import SFTTrainer
from trl.models.utils import unwrap_model_for_generation

with warnings.catch_warnings():      # GKD lives in trl.experimental (METHODS §4(h)); its import warns
    warnings.filterwarnings("ignore", message=".*trl.experimental.*")
    from trl.experimental.gkd import GKDConfig, GKDTrainer

from trainers.kd_data import positions
from trainers.losses import distill_loss_sum, sparse_distill_loss_sum


@dataclass(frozen=True)
class LossSettings:
    loss: str = "akl"
    mu: float = 0.5
    beta: float = 0.5
    alpha: float = 0.1

    def kwargs(self) -> dict[str, Any]:
        return {"loss": self.loss, "mu": self.mu, "beta": self.beta, "alpha": self.alpha}


def mean_over(total: torch.Tensor, count: int, num_items_in_batch: Any) -> torch.Tensor:
    if num_items_in_batch is not None:
        return total / num_items_in_batch
    return total / max(count, 1)


def student_logits(model: Any, inputs: dict[str, torch.Tensor]) -> Any:
    mask = inputs["attention_mask"]
    return model(input_ids=inputs["input_ids"], attention_mask=mask, position_ids=positions(mask))


class KDTrainer(GKDTrainer):
    """GKD with the loss library's divergences; ``loss`` is a :class:`LossSettings`."""

    def __init__(self, *args: Any, loss: LossSettings, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.kd_loss = loss

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        out = student_logits(model, inputs)
        teacher_ids = inputs.get("teacher_input_ids", inputs["input_ids"])
        teacher_mask = inputs.get("teacher_attention_mask", inputs["attention_mask"])
        self.teacher_model.eval()
        with torch.no_grad():
            teacher = self.teacher_model(input_ids=teacher_ids, attention_mask=teacher_mask,
                                         position_ids=positions(teacher_mask)).logits
        width = min(out.logits.shape[1], teacher.shape[1]) - 1      # the trailing columns both have
        total, count = distill_loss_sum(out.logits[:, -width - 1:-1], teacher[:, -width - 1:-1],
                                        inputs["labels"][:, -width:], **self.kd_loss.kwargs())
        loss = mean_over(total, count, num_items_in_batch)
        return (loss, out) if return_outputs else loss

    def training_step(self, model, inputs, num_items_in_batch=None):
        """With probability ``lmbda``, train on the student's own samples of the batch's prompts."""
        if self.lmbda > 0 and random.random() < self.lmbda:
            with unwrap_model_for_generation(model, self.accelerator, generation_kwargs=self.generation_kwargs,
                                             gradient_checkpointing_kwargs=self.args.gradient_checkpointing_kwargs
                                             ) as unwrapped:
                ids, mask, labels = self.generate_on_policy_outputs(unwrapped, inputs, self.generation_config)
            inputs = {"input_ids": ids, "attention_mask": mask, "labels": labels}
        return super(GKDTrainer, self).training_step(model, inputs, num_items_in_batch)


class TopKTrainer(SFTTrainer):
    """SFTTrainer whose loss is the sparse KD loss against the corpus's top-k log-probabilities."""

    def __init__(self, *args: Any, loss: LossSettings, **kwargs: Any):
        args_ = kwargs["args"]
        args_.remove_unused_columns = False
        args_.dataset_kwargs = {**(args_.dataset_kwargs or {}), "skip_prepare_dataset": True}
        super().__init__(*args, **kwargs)
        self.kd_loss = loss

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        out = student_logits(model, inputs)
        total, count = sparse_distill_loss_sum(out.logits[:, :-1], inputs["topk_ids"][:, 1:],
                                               inputs["topk_logprobs"][:, 1:], inputs["labels"][:, 1:],
                                               **self.kd_loss.kwargs())
        loss = mean_over(total, count, num_items_in_batch)
        return (loss, out) if return_outputs else loss


__all__ = ["GKDConfig", "KDTrainer", "LossSettings", "TopKTrainer", "mean_over", "student_logits"]
