"""Distillation losses between a teacher's next-token distribution p and a student's q, per token,
averaged over the positions that are trained (label not -100).

Notation: at one position, ``p`` = softmax(teacher logits), ``q`` = softmax(student logits) over the
shared vocabulary, ``KL(a‖b) = Σ a·(log a − log b)`` (terms with a = 0 are 0). Every loss is a full
divergence (no constant dropped), so each is exactly 0 when q equals p:

- ``fkl``: KL(p‖q), mass-covering; ``rkl``: KL(q‖p), mode-seeking.
- ``jsd``: the generalised Jensen-Shannon divergence with ``beta``:
  β·KL(p‖m) + (1−β)·KL(q‖m), m = β·p + (1−β)·q; β = 0 is exactly ``fkl`` and β = 1 exactly ``rkl``
  (the mixture form would vanish there, so the endpoints are computed as the KLs themselves).
- ``skl``: KL(p‖α·p + (1−α)·q); ``srkl``: KL(q‖(1−α)·p + α·q) (skewed KLs with ``alpha``). Note
  JSD_β = β·SKL_β + (1−β)·SRKL_(1−β).
- ``akl``: the adaptive combination. Sort p in descending order; the head is the leading tokens whose
  inclusive cumulative teacher mass is at most ``mu`` (the top-1 token always in it), the tail the
  rest. With the student detached and gathered into the teacher's sorted order, the gaps
  g_head = Σ_head |p−q| and g_tail = Σ_tail |p−q| weight the two KLs:
  [g_head·KL(p‖q) + g_tail·KL(q‖p)] / (g_head + g_tail); a position whose gaps are both 0 gives 0.

Everything is computed in float32 whatever the logits' dtype, on the trained positions only, a chunk
of positions at a time (about ``CHUNK_ELEMENTS`` vocabulary entries per chunk): no float32 copy of
the whole ``[B, T, V]`` logits is made. The gradient with respect to the student's logits is
computed chunk by chunk during the forward pass (a small autograd graph per chunk) and kept in the
logits' own dtype, so the backward pass only scales it.

:func:`sparse_distill_loss` is the variant for a teacher known only by its top-k log-probabilities
(captured at compile time): see its docstring for what it approximates.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

LOSSES = ("fkl", "rkl", "jsd", "skl", "srkl", "akl")
CHUNK_ELEMENTS = 1 << 20          # vocabulary entries per chunk (4 MiB per float32 temporary)
IGNORE = -100
_FLOOR = -1e30                    # stands for log 0 inside log-sum-exp (keeps its gradient finite)
REST_FLOOR = 1e-6                 # least teacher mass outside its top-k (see sparse_distill_loss)

PerToken = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def check_settings(loss: str, mu: float = 0.5, beta: float = 0.5, alpha: float = 0.1) -> None:
    """Raise ValueError (one line) for an unknown loss or a parameter out of its range."""
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r} (losses: {', '.join(LOSSES)})")
    if not 0.0 < mu <= 1.0:
        raise ValueError(f"mu must be in (0, 1], got {mu}")
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta must be in [0, 1], got {beta}")
    if not 0.0 <= alpha < 1.0:
        raise ValueError(f"alpha must be in [0, 1), got {alpha}")


# ---------------------------------------------------------------------------------------------
# per-token divergences on float32 log-probabilities [N, V] -> [N]


def kl(loga: torch.Tensor, logb: torch.Tensor) -> torch.Tensor:
    """KL(a‖b) per row; entries where a = 0 contribute 0 (and no NaN gradient)."""
    a = loga.exp()
    return (a * torch.where(a > 0, loga - logb, 0.0)).sum(-1)


def mix(loga: torch.Tensor, logb: torch.Tensor, w: float) -> torch.Tensor:
    """log(w·a + (1−w)·b), written around the larger of the two terms,
    log m = log hi + log1p(w_lo·(lo/hi − 1)), so that it is exact (log a) where a = b and finite
    everywhere, its gradient included."""
    if w == 0.0:
        return logb
    if w == 1.0:
        return loga
    la, lb = loga.clamp_min(_FLOOR), logb.clamp_min(_FLOOR)
    a_high = la >= lb
    high, low = torch.where(a_high, la, lb), torch.where(a_high, lb, la)
    w_low = torch.where(a_high, 1.0 - w, w)
    return high + torch.log1p(w_low * torch.expm1(low - high))


def jsd(logq: torch.Tensor, logp: torch.Tensor, beta: float) -> torch.Tensor:
    if beta == 0.0:
        return kl(logp, logq)
    if beta == 1.0:
        return kl(logq, logp)
    logm = mix(logp, logq, beta)
    return beta * kl(logp, logm) + (1.0 - beta) * kl(logq, logm)


def akl(logq: torch.Tensor, logp: torch.Tensor, mu: float) -> torch.Tensor:
    """The adaptive KL of the module docstring, per row."""
    with torch.no_grad():
        p_sorted, order = logp.exp().sort(-1, descending=True)
        gap = (p_sorted - logq.detach().exp().gather(-1, order)).abs()
        del order
        tail = p_sorted.cumsum(-1) > mu
        tail[:, 0] = False
        g_tail = (gap * tail).sum(-1)
        g_head = gap.sum(-1) - g_tail
        total = g_head + g_tail
        w_head = torch.where(total > 0, g_head / total, 0.0)
        w_tail = torch.where(total > 0, g_tail / total, 0.0)
    return w_head * kl(logp, logq) + w_tail * kl(logq, logp)


def divergence(loss: str, *, mu: float = 0.5, beta: float = 0.5, alpha: float = 0.1) -> PerToken:
    """``fn(logq, logp) -> [N]``: the per-token loss named ``loss`` on float32 log-probabilities."""
    check_settings(loss, mu, beta, alpha)
    table: dict[str, PerToken] = {
        "fkl": lambda lq, lp: kl(lp, lq),
        "rkl": lambda lq, lp: kl(lq, lp),
        "jsd": lambda lq, lp: jsd(lq, lp, beta),
        "skl": lambda lq, lp: kl(lp, mix(lp, lq, alpha)),
        "srkl": lambda lq, lp: kl(lq, mix(lq, lp, alpha)),
        "akl": lambda lq, lp: akl(lq, lp, mu),
    }
    return table[loss]


# ---------------------------------------------------------------------------------------------
# chunked evaluation over the trained positions


class _Chunked(torch.autograd.Function):
    """Sum of ``fn(student rows, batch indices, time indices)`` over the given positions, chunk by
    chunk. The student logits' gradient is computed in the forward pass, chunk by chunk, into a buffer
    of their own dtype; ``fn`` gets float32 student logits [C, V] (gathered from the positions, so a
    sliced, non-contiguous view of the logits is never copied whole)."""

    @staticmethod
    def forward(ctx, student: torch.Tensor, where: tuple[torch.Tensor, torch.Tensor], fn: Callable,
                chunk: int) -> torch.Tensor:
        grad = torch.zeros(student.shape, dtype=student.dtype, device=student.device) \
            if ctx.needs_input_grad[0] else None
        total = torch.zeros((), dtype=torch.float32, device=student.device)
        for b, t in zip(where[0].split(chunk), where[1].split(chunk)):
            s = student[b, t].float()
            if grad is None:
                total += fn(s, b, t).sum()
                continue
            with torch.enable_grad():
                s.requires_grad_(True)
                value = fn(s, b, t).sum()
                (g,) = torch.autograd.grad(value, s)
            grad[b, t] = g.to(grad.dtype)
            total += value.detach()
        ctx.save_for_backward(grad if grad is not None else torch.empty(0))
        return total

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (grad,) = ctx.saved_tensors
        return grad.mul_(grad_out.to(grad.dtype)), None, None, None


def chunk_rows(vocab: int, chunk_positions: int | None = None) -> int:
    return chunk_positions or max(1, CHUNK_ELEMENTS // max(1, vocab))


def trained_positions(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(batch indices, time indices) of the positions whose label is not -100."""
    b, t = (labels != IGNORE).nonzero(as_tuple=True)
    return b, t


def distill_loss_sum(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, *,
                     loss: str, mu: float = 0.5, beta: float = 0.5, alpha: float = 0.1,
                     chunk_positions: int | None = None) -> tuple[torch.Tensor, int]:
    """(sum of the per-token loss over trained positions, their number); see :func:`distill_loss`."""
    if student_logits.shape != teacher_logits.shape or student_logits.shape[:-1] != labels.shape:
        raise ValueError(f"shapes differ: student {tuple(student_logits.shape)}, teacher "
                         f"{tuple(teacher_logits.shape)}, labels {tuple(labels.shape)}")
    per_token = divergence(loss, mu=mu, beta=beta, alpha=alpha)
    teacher = teacher_logits.detach()

    def fn(s: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return per_token(torch.log_softmax(s, -1), torch.log_softmax(teacher[b, t].float(), -1))

    where = trained_positions(labels)
    total = _Chunked.apply(student_logits, where, fn, chunk_rows(student_logits.shape[-1], chunk_positions))
    return total, int(where[0].numel())


def distill_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, *,
                 loss: str, mu: float = 0.5, beta: float = 0.5, alpha: float = 0.1) -> torch.Tensor:
    """The mean over positions whose label is not -100 of the per-token divergence ``loss`` between
    the teacher's distribution and the student's (module docstring). Logits ``[B, T, V]`` and labels
    ``[B, T]`` are already aligned (the caller shifts); the result is a float32 scalar whose gradient
    flows to ``student_logits`` only. No trained position: 0."""
    total, count = distill_loss_sum(student_logits, teacher_logits, labels, loss=loss, mu=mu, beta=beta,
                                    alpha=alpha)
    return total / max(count, 1)


# ---------------------------------------------------------------------------------------------
# a teacher known by its top-k log-probabilities


def coarsen(logq: torch.Tensor, ids: torch.Tensor, logp_k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Both distributions over k + 1 outcomes: the teacher's top-k tokens (``ids`` [N, k], -1 where
    missing) and "any other token". Returns (student, teacher) log-probabilities [N, k + 1]."""
    present = ids >= 0
    safe = ids.clamp_min(0)
    q_k = torch.where(present, logq.gather(-1, safe), float("-inf"))
    listed = torch.zeros(logq.shape, dtype=torch.int32, device=logq.device).scatter_add_(-1, safe, present.int()) > 0
    rest_q = torch.logsumexp(logq.masked_fill(listed, float("-inf")), -1)
    p_k = torch.where(present, logp_k.float(), float("-inf"))
    rest_p = torch.log((1.0 - p_k.exp().sum(-1)).clamp_min(REST_FLOOR))
    rest_p = torch.where(torch.isinf(rest_q), float("-inf"), rest_p)   # the top-k lists every token
    return torch.cat([q_k, rest_q[:, None]], -1), torch.cat([p_k, rest_p[:, None]], -1)


def sparse_distill_loss_sum(student_logits: torch.Tensor, topk_ids: torch.Tensor, topk_logprobs: torch.Tensor,
                            labels: torch.Tensor, *, loss: str, mu: float = 0.5, beta: float = 0.5,
                            alpha: float = 0.1, chunk_positions: int | None = None) -> tuple[torch.Tensor, int]:
    """(sum, count) of the top-k distillation loss over trained positions; see :func:`sparse_distill_loss`."""
    per_token = divergence(loss, mu=mu, beta=beta, alpha=alpha)

    def fn(s: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        logq = torch.log_softmax(s, -1)
        ids = topk_ids[b, t]
        q_c, p_c = coarsen(logq, ids, topk_logprobs[b, t])
        ce = -logq.gather(-1, labels[b, t][:, None]).squeeze(1)
        return torch.where((ids >= 0).any(-1), per_token(q_c, p_c), ce)

    where = trained_positions(labels)
    total = _Chunked.apply(student_logits, where, fn, chunk_rows(student_logits.shape[-1], chunk_positions))
    return total, int(where[0].numel())


def sparse_distill_loss(student_logits: torch.Tensor, topk_ids: torch.Tensor, topk_logprobs: torch.Tensor,
                        labels: torch.Tensor, *, loss: str, mu: float = 0.5, beta: float = 0.5,
                        alpha: float = 0.1) -> torch.Tensor:
    """:func:`distill_loss` for a teacher known only by its top-k log-probabilities at each position
    (``topk_ids``/``topk_logprobs`` ``[B, T, k]``, id -1 where absent, aligned like the labels).

    What it approximates: the divergence between the two distributions *coarsened* to k + 1 outcomes,
    the teacher's top-k tokens and one bucket for every other token (teacher mass 1 − Σ top-k; student
    mass what it puts outside those k tokens). Coarsening never increases an f-divergence (``fkl``,
    ``rkl``, ``jsd``, ``skl`` and ``srkl`` are all f-divergences), so each is a lower bound on the
    full-vocabulary value, tight when the teacher's mass outside its top-k is near zero and the
    student's mass there is spread like the teacher's; ``akl`` combines the two coarsened KLs with
    gaps measured on the k + 1 outcomes. The teacher's mass outside its top-k is floored at
    ``REST_FLOOR``: a top-k whose reported mass rounds to 1 would otherwise make the reverse-type
    losses infinite wherever the student puts any mass elsewhere. A position with a label but no top-k (e.g. an end-of-turn
    token the chat template adds) is trained with cross-entropy on its label: the KL from a one-hot
    teacher."""
    total, count = sparse_distill_loss_sum(student_logits, topk_ids, topk_logprobs, labels, loss=loss, mu=mu,
                                           beta=beta, alpha=alpha)
    return total / max(count, 1)
