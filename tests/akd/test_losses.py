"""The loss library against values worked out by hand on tiny distributions.

Each expected value below is computed from the probabilities themselves with plain Python
(``kl_ref``), never by the library: the logits are log-probabilities, so softmax returns them."""

from __future__ import annotations

import math

import pytest
import torch

from trainers.losses import LOSSES, distill_loss, distill_loss_sum, sparse_distill_loss

P = [0.1, 0.6, 0.3]          # teacher; sorted order (1, 2, 0) differs from index order
Q = [0.3, 0.3, 0.4]          # student


def kl_ref(a: list[float], b: list[float]) -> float:
    return sum(x * math.log(x / y) for x, y in zip(a, b) if x > 0)


def mixture(a: list[float], b: list[float], w: float) -> list[float]:
    return [w * x + (1 - w) * y for x, y in zip(a, b)]


def logits(*dists: list[float]) -> torch.Tensor:
    """[1, len(dists), V] logits whose softmax is each distribution."""
    return torch.tensor([[[math.log(x) for x in d] for d in dists]], dtype=torch.float32)


def loss_of(p, q, loss: str, **kw) -> float:
    labels = torch.zeros((1, 1), dtype=torch.long)
    return float(distill_loss(logits(q), logits(p), labels, loss=loss, **kw))


# FKL = 0.1 ln(0.1/0.3) + 0.6 ln(0.6/0.3) + 0.3 ln(0.3/0.4) = -0.109861 + 0.415888 - 0.086305
FKL = 0.219722
# RKL = 0.3 ln(0.3/0.1) + 0.3 ln(0.3/0.6) + 0.4 ln(0.4/0.3) = 0.329584 - 0.207944 + 0.115073
RKL = 0.236713


def test_forward_and_reverse_kl_by_hand():
    assert kl_ref(P, Q) == pytest.approx(FKL, abs=1e-6) and kl_ref(Q, P) == pytest.approx(RKL, abs=1e-6)
    assert loss_of(P, Q, "fkl") == pytest.approx(FKL, abs=1e-6)
    assert loss_of(P, Q, "rkl") == pytest.approx(RKL, abs=1e-6)


@pytest.mark.parametrize("beta", [0.1, 0.5, 0.8])
def test_jsd_is_the_beta_mixture(beta):
    m = mixture(P, Q, beta)
    expected = beta * kl_ref(P, m) + (1 - beta) * kl_ref(Q, m)
    assert loss_of(P, Q, "jsd", beta=beta) == pytest.approx(expected, rel=1e-5)


def test_jsd_endpoints_are_exactly_fkl_and_rkl():
    assert loss_of(P, Q, "jsd", beta=0.0) == loss_of(P, Q, "fkl")
    assert loss_of(P, Q, "jsd", beta=1.0) == loss_of(P, Q, "rkl")
    assert loss_of(P, Q, "jsd", beta=0.0) == pytest.approx(FKL, abs=1e-6)
    # near the endpoints the mixture form shrinks towards 0 instead
    assert loss_of(P, Q, "jsd", beta=1e-4) < 1e-3


@pytest.mark.parametrize("alpha", [0.0, 0.1, 0.6])
def test_skew_kls_by_hand(alpha):
    assert loss_of(P, Q, "skl", alpha=alpha) == pytest.approx(kl_ref(P, mixture(P, Q, alpha)), rel=1e-5)
    assert loss_of(P, Q, "srkl", alpha=alpha) == pytest.approx(kl_ref(Q, mixture(P, Q, 1 - alpha)), rel=1e-5)


@pytest.mark.parametrize("beta", [0.2, 0.5, 0.9])
def test_jsd_identity_with_the_skew_kls(beta):
    """JSD_β = β·SKL_β + (1−β)·SRKL_(1−β)."""
    jsd = loss_of(P, Q, "jsd", beta=beta)
    skl, srkl = loss_of(P, Q, "skl", alpha=beta), loss_of(P, Q, "srkl", alpha=1 - beta)
    assert jsd == pytest.approx(beta * skl + (1 - beta) * srkl, rel=1e-5)


def test_akl_gathers_the_student_into_the_teachers_sorted_order():
    """μ = 0.5: sorted teacher mass 0.6 (token 1), 0.3 (token 2), 0.1 (token 0); the cumulative mass
    passes μ at once, so the head is the top-1 token alone. Correct gaps: head |0.6−0.3| = 0.3, tail
    |0.3−0.4| + |0.1−0.3| = 0.3, so AKL = 0.5·FKL + 0.5·RKL. The porting error (the sorted-order head
    mask applied to index order, i.e. token 0 as the head) gives head 0.2, tail 0.4: FKL/3 + 2·RKL/3."""
    correct = 0.5 * FKL + 0.5 * RKL
    ported = FKL / 3 + 2 * RKL / 3
    got = loss_of(P, Q, "akl", mu=0.5)
    assert got == pytest.approx(correct, abs=1e-6)
    assert abs(got - ported) > 1e-3


def test_akl_head_of_two_tokens():
    """p = [0.05, 0.15, 0.5, 0.3], μ = 0.85: cumulative 0.5, 0.8, 0.95 → head {2, 3}, tail {1, 0}.
    q = [0.1, 0.3, 0.55, 0.05]: head gap 0.05 + 0.25 = 0.3, tail gap 0.15 + 0.05 = 0.2 → 0.6/0.4
    (the index-order mistake would give 0.4/0.6)."""
    p, q = [0.05, 0.15, 0.5, 0.3], [0.1, 0.3, 0.55, 0.05]
    fkl, rkl = kl_ref(p, q), kl_ref(q, p)
    got = loss_of(p, q, "akl", mu=0.85)
    assert got == pytest.approx(0.6 * fkl + 0.4 * rkl, rel=1e-5)
    assert abs(got - (0.4 * fkl + 0.6 * rkl)) > 1e-3
    # μ = 1: every token is in the head, so the tail gap is 0 and AKL is FKL
    assert loss_of(p, q, "akl", mu=1.0) == pytest.approx(fkl, rel=1e-5)


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_zero_when_the_student_equals_the_teacher(loss, dtype):
    torch.manual_seed(0)
    same = (torch.randn(2, 5, 50) * 3).to(dtype).requires_grad_(True)
    labels = torch.randint(0, 50, (2, 5))
    value = distill_loss(same, same.detach().clone(), labels, loss=loss)
    assert value.dtype == torch.float32 and float(value) == 0.0
    (grad,) = torch.autograd.grad(value, same)
    assert float(grad.float().abs().max()) < 1e-6


def test_mean_over_unmasked_positions_only():
    """Two positions: (P, Q) trained, (Q, P) masked; then both trained."""
    teacher, student = logits(P, Q), logits(Q, P).requires_grad_(True)
    masked = torch.tensor([[0, -100]])
    value = distill_loss(student, teacher, masked, loss="fkl")
    assert float(value) == pytest.approx(FKL, abs=1e-6)
    (grad,) = torch.autograd.grad(value, student)
    assert float(grad[0, 1].abs().max()) == 0.0
    both = distill_loss(student, teacher, torch.tensor([[0, 0]]), loss="fkl")
    assert float(both) == pytest.approx((FKL + kl_ref(Q, P)) / 2, abs=1e-6)
    assert float(distill_loss(student, teacher, torch.tensor([[-100, -100]]), loss="fkl")) == 0.0


def test_forward_kl_gradient_is_q_minus_p():
    """∂FKL/∂z = q − p per trained position, divided by their number (2)."""
    teacher, student = logits(P, Q), logits(Q, P).requires_grad_(True)
    (grad,) = torch.autograd.grad(distill_loss(student, teacher, torch.tensor([[5, 5]]), loss="fkl"), student)
    expected = torch.tensor([[[(q - p) / 2 for p, q in zip(P, Q)], [(p - q) / 2 for p, q in zip(P, Q)]]])
    assert torch.allclose(grad, expected, atol=1e-6)


def test_reverse_kl_gradient_by_hand():
    """∂KL(q‖p)/∂z_j = q_j·(ln q_j − ln p_j − KL(q‖p))."""
    student = logits(Q).requires_grad_(True)
    (grad,) = torch.autograd.grad(distill_loss(student, logits(P), torch.tensor([[1]]), loss="rkl"), student)
    expected = [q * (math.log(q) - math.log(p) - RKL) for p, q in zip(P, Q)]
    assert torch.allclose(grad[0, 0], torch.tensor(expected), atol=1e-6)


@pytest.mark.parametrize("loss", LOSSES)
def test_gradients_finite_with_masked_vocabulary_and_bf16(loss):
    """A teacher logit of -inf (a token the teacher can never produce) and bf16 logits: the value and
    every gradient stay finite (except RKL-type losses, which are legitimately infinite there, so the
    student gets a finite teacher there too in that case)."""
    torch.manual_seed(1)
    teacher = torch.randn(2, 4, 64) * 4
    if loss in ("fkl", "jsd", "skl"):
        teacher[..., 3] = float("-inf")
    student = (torch.randn(2, 4, 64) * 4).bfloat16().requires_grad_(True)
    labels = torch.randint(0, 64, (2, 4))
    labels[1, :2] = -100
    value = distill_loss(student, teacher, labels, loss=loss)
    value.backward()
    assert torch.isfinite(value) and float(value) > 0
    assert torch.isfinite(student.grad.float()).all() and float(student.grad.float().abs().sum()) > 0
    assert student.grad.dtype == torch.bfloat16 and float(student.grad[1, :2].float().abs().sum()) == 0.0


@pytest.mark.parametrize("loss", LOSSES)
def test_chunking_does_not_change_value_or_gradient(loss):
    torch.manual_seed(2)
    teacher, base = torch.randn(3, 7, 40), torch.randn(3, 7, 40)
    labels = torch.randint(0, 40, (3, 7))
    labels[0, :3] = -100
    results = []
    for chunk in (1, 4, None):
        student = base.clone().requires_grad_(True)
        total, count = distill_loss_sum(student, teacher, labels, loss=loss, chunk_positions=chunk)
        (total / count).backward()
        results.append((float(total), student.grad))
    assert count == 18
    for value, grad in results[1:]:
        assert value == pytest.approx(results[0][0], rel=1e-5) and torch.allclose(grad, results[0][1], atol=1e-7)


def test_matches_trl_generalized_jsd():
    """An outside reference for the jsd family: TRL's own generalized JSD."""
    from trl.experimental.gkd import GKDTrainer

    torch.manual_seed(3)
    student, teacher = torch.randn(2, 6, 30), torch.randn(2, 6, 30)
    labels = torch.randint(0, 30, (2, 6))
    labels[:, :2] = -100
    for beta in (0.0, 0.5, 1.0):
        ours = distill_loss(student, teacher, labels, loss="jsd", beta=beta)
        trl = GKDTrainer.generalized_jsd_loss(student, teacher, labels, beta=beta)
        assert float(ours) == pytest.approx(float(trl), rel=1e-5)


@pytest.mark.parametrize("kw, message", [
    ({"loss": "kl"}, "unknown loss 'kl'"),
    ({"loss": "akl", "mu": 0.0}, "mu must be in (0, 1]"),
    ({"loss": "akl", "mu": 1.5}, "mu must be in (0, 1]"),
    ({"loss": "jsd", "beta": -0.1}, "beta must be in [0, 1]"),
    ({"loss": "skl", "alpha": 1.0}, "alpha must be in [0, 1)"),
])
def test_bad_settings(kw, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        distill_loss(logits(Q), logits(P), torch.zeros((1, 1), dtype=torch.long), **kw)


# ---------------------------------------------------------------------------------------------
# top-k teacher

P4, Q4 = [0.05, 0.6, 0.3, 0.05], [0.1, 0.3, 0.4, 0.2]


def sparse_of(loss: str, ids: list[int], label: int = 1) -> float:
    topk_ids = torch.tensor([[ids]])
    topk_lp = torch.tensor([[[math.log(P4[i]) if i >= 0 else 0.0 for i in ids]]])
    return float(sparse_distill_loss(logits(Q4), topk_ids, topk_lp, torch.tensor([[label]]), loss=loss))


def test_sparse_loss_is_the_divergence_of_the_coarsened_distributions():
    """Top-2 = tokens 1 and 2; the rest bucket holds teacher mass 0.1 and student mass 0.3:
    FKL = 0.6 ln(0.6/0.3) + 0.3 ln(0.3/0.4) + 0.1 ln(0.1/0.3)."""
    coarse_p, coarse_q = [0.6, 0.3, 0.1], [0.3, 0.4, 0.3]
    assert sparse_of("fkl", [1, 2]) == pytest.approx(kl_ref(coarse_p, coarse_q), rel=1e-5)
    assert sparse_of("rkl", [1, 2]) == pytest.approx(kl_ref(coarse_q, coarse_p), rel=1e-5)
    assert sparse_of("fkl", [1, 2, -1]) == pytest.approx(sparse_of("fkl", [1, 2]), rel=1e-6)
    # coarsening can only lose divergence: a lower bound on the full value, equal with the full top-k
    assert sparse_of("fkl", [1, 2]) < kl_ref(P4, Q4)
    assert sparse_of("fkl", [0, 1, 2, 3]) == pytest.approx(kl_ref(P4, Q4), rel=1e-5)
    assert sparse_of("akl", [0, 1, 2, 3]) == pytest.approx(loss_of(P4, Q4, "akl"), rel=1e-5)


def test_sparse_loss_without_top_k_is_cross_entropy_on_the_label():
    assert sparse_of("rkl", [-1, -1], label=3) == pytest.approx(-math.log(Q4[3]), rel=1e-6)
