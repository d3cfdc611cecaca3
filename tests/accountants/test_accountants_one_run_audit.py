"""The one-run audit's lower bound (Steinke, Nasr and Jagielski 2023, Theorem 3, Appendix D)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from isoeps.accountants.one_run_audit import AuditInputError, epsilon_lower_bound, p_value


def _pure_dp_perfect(r: int, beta: float) -> float:
    """Closed form for delta = 0 and r right guesses out of r: q^r = beta, eps = logit(q)."""
    q = beta ** (1 / r)
    return math.log(q / (1 - q))


def test_monotone_in_correct_guesses() -> None:
    bounds = [
        epsilon_lower_bound(m=200, k_plus=25, k_minus=25, correct=v, delta=1e-5)
        for v in range(25, 51)
    ]
    assert all(b <= a + 1e-9 for a, b in zip(bounds[1:], bounds[:-1]))
    assert bounds[0] == 0.0 and bounds[-1] > 2.5


def test_all_correct_with_many_canaries_gives_a_large_bound() -> None:
    bound = epsilon_lower_bound(m=1000, k_plus=500, k_minus=500, correct=1000, delta=1e-5)
    assert bound > 5.5


def test_pure_dp_matches_the_closed_form() -> None:
    # With delta = 0 and every guess right, the p-value is q^r: the bound is logit(beta^(1/r)).
    for r in (10, 100, 1000):
        bound = epsilon_lower_bound(m=r, k_plus=r // 2, k_minus=r - r // 2, correct=r)
        assert bound == pytest.approx(_pure_dp_perfect(r, 0.05), abs=1e-6)


def test_p_value_matches_the_theorem_by_hand() -> None:
    # Theorem 3 at r = 20, v = 17, eps = 1, delta = 1e-3, m = 40, summed term by term.
    m, r, v, eps, delta = 40, 20, 17, 1.0, 1e-3
    q = math.exp(eps) / (1 + math.exp(eps))
    tail = sum(stats.binom.pmf(j, r, q) for j in range(v, r + 1))
    alpha = max(sum(stats.binom.pmf(j, r, q) for j in range(v - i, v)) / i for i in range(1, v + 1))
    expected = tail + 2 * m * delta * alpha
    got = p_value(m=m, k_plus=10, k_minus=10, correct=v, epsilon=eps, delta=delta)
    assert got == pytest.approx(expected, rel=1e-12)


def test_delta_lowers_the_bound() -> None:
    kwargs = {"m": 100, "k_plus": 20, "k_minus": 20, "correct": 40}
    assert epsilon_lower_bound(**kwargs, delta=1e-2) < epsilon_lower_bound(**kwargs, delta=0.0)


def test_random_guessing_gives_about_zero() -> None:
    rng = np.random.default_rng(0)
    m, k = 1000, 100
    bounds = []
    for _ in range(20):
        coins = rng.random(m) < 0.5
        scores = rng.random(m)  # scores independent of membership
        order = np.argsort(scores)
        correct = int(coins[order[-k:]].sum() + (~coins[order[:k]]).sum())
        bounds.append(epsilon_lower_bound(m=m, k_plus=k, k_minus=k, correct=correct, delta=1e-5))
    assert max(bounds) < 0.5
    assert sum(b == 0.0 for b in bounds) >= 15


def test_a_dp_run_rarely_exceeds_its_epsilon() -> None:
    # Randomised response at eps = 1 is exactly the worst case of Theorem 3: the bound may
    # exceed 1 in at most a beta = 5% share of runs.
    rng = np.random.default_rng(1)
    eps, r = 1.0, 200
    q = math.exp(eps) / (1 + math.exp(eps))
    over = 0
    for _ in range(200):
        correct = int(rng.binomial(r, q))
        over += epsilon_lower_bound(m=r, k_plus=r // 2, k_minus=r // 2, correct=correct) > eps
    assert over <= 0.05 * 200 + 3 * math.sqrt(200 * 0.05 * 0.95)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"m": 10, "k_plus": 6, "k_minus": 5, "correct": 3}, "exceed the m=10"),
        ({"m": 0, "k_plus": 0, "k_minus": 0, "correct": 0}, "at least one canary"),
        ({"m": 10, "k_plus": 2, "k_minus": 2, "correct": 5}, "correct=5"),
        ({"m": 10, "k_plus": -1, "k_minus": 2, "correct": 0}, ">= 0"),
        (
            {"m": 10, "k_plus": 2, "k_minus": 2, "correct": 2, "beta": 0.0},
            r"beta must lie in \(0, 1\)",
        ),
        ({"m": 10, "k_plus": 2, "k_minus": 2, "correct": 2, "beta": 1.0}, "beta"),
        ({"m": 10, "k_plus": 2, "k_minus": 2, "correct": 2, "delta": 1.5}, "delta"),
        ({"m": 10.0, "k_plus": 2, "k_minus": 2, "correct": 2}, "m must be an integer"),
    ],
)
def test_bad_input_gets_a_named_error(kwargs: dict, match: str) -> None:
    with pytest.raises(AuditInputError, match=match):
        epsilon_lower_bound(**kwargs)
