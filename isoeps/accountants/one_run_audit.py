"""The lower bound on epsilon of a one-run privacy audit (pure arithmetic, no torch).

Steinke, Nasr and Jagielski, "Privacy Auditing with One (1) Training Run", NeurIPS 2023,
arXiv:2305.08846. m canaries are each included in the training data by an independent fair
coin; after one run the auditor guesses "member" for ``k_plus`` canaries and "non-member" for
``k_minus`` (abstaining on the rest), and counts the ``correct`` guesses among the r =
``k_plus + k_minus`` made.

Theorem 3 of the paper (the (epsilon, delta) case, proved in its Section 5): if the training
run is (epsilon, delta)-DP, then for every v,

    P[correct >= v] <= P[Bin(r, q) >= v] + 2 m delta * max_{i = 1..v} P[v > Bin(r, q) >= v - i] / i,
    q = e^eps / (1 + e^eps),

the accuracy of eps-DP randomised response. The right-hand side is the p-value of the null
hypothesis "the run is (eps, delta)-DP" given ``correct`` = v; the audit's lower bound at
confidence 1 - beta is the largest eps that this test rejects at level beta.

:func:`p_value` and :func:`epsilon_lower_bound` follow the paper's Appendix D code
(``p_value_DP_audit`` and ``get_eps_audit``) step by step: the running maximum over i, the
doubling of ``eps_max`` by +1 until the p-value reaches beta, then 30 bisection steps that
keep the p-value at ``eps_min`` below beta. A run of fewer guesses, or of chance-level
accuracy, gives 0.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

#: Bisection steps of the paper's search (Appendix D): eps is resolved to about 2^-30 of the
#: bracket, far below any difference an audit can see.
BISECTION_STEPS = 30


class AuditInputError(ValueError):
    """The audit's counts, confidence or delta are not a valid input to the bound."""


def _check_counts(*, m: int, k_plus: int, k_minus: int, correct: int) -> None:
    for name, value in (("m", m), ("k_plus", k_plus), ("k_minus", k_minus), ("correct", correct)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise AuditInputError(f"{name} must be an integer, got {value!r}")
    if m < 1:
        raise AuditInputError(f"the audit needs at least one canary, got m={m}")
    if k_plus < 0 or k_minus < 0:
        raise AuditInputError(f"guess counts must be >= 0, got k_plus={k_plus}, k_minus={k_minus}")
    if k_plus + k_minus > m:
        raise AuditInputError(
            f"k_plus + k_minus = {k_plus + k_minus} guesses exceed the m={m} canaries "
            "(each canary is guessed at most once)"
        )
    if not 0 <= correct <= k_plus + k_minus:
        raise AuditInputError(
            f"correct={correct} must lie between 0 and the {k_plus + k_minus} guesses made"
        )


def _check_level(name: str, value: float, *, closed: bool) -> None:
    low_ok = value >= 0 if closed else value > 0
    high_ok = value <= 1 if closed else value < 1
    if math.isnan(value) or not (low_ok and high_ok):
        interval = "[0, 1]" if closed else "(0, 1)"
        raise AuditInputError(f"{name} must lie in {interval}, got {value!r}")


def _p_value(m: int, r: int, v: int, eps: float, delta: float) -> float:
    """The paper's ``p_value_DP_audit``: the bound on P[correct >= v] under (eps, delta)-DP."""
    q = 1.0 / (1.0 + math.exp(-eps))
    tail = float(stats.binom.sf(v - 1, r, q))  # P[Bin(r, q) >= v]
    if v == 0:
        return min(tail, 1.0)
    # The paper's loop over i = 1..v, vectorised: below[i-1] = P[v > Bin(r, q) >= v - i].
    i = np.arange(1, v + 1)
    below = np.cumsum(stats.binom.pmf(v - i, r, q))
    alpha = float(np.max(below / i))
    return min(tail + alpha * delta * 2 * m, 1.0)


def p_value(
    *, m: int, k_plus: int, k_minus: int, correct: int, epsilon: float, delta: float = 0.0
) -> float:
    """The p-value of "the run is (epsilon, delta)-DP" after ``correct`` right guesses.

    Args:
        m: the number of canaries, each included by a fair coin.
        k_plus: how many canaries were guessed members.
        k_minus: how many were guessed non-members.
        correct: how many of the ``k_plus + k_minus`` guesses were right.
        epsilon: the null hypothesis's epsilon, >= 0.
        delta: its delta, in [0, 1].

    Returns:
        The paper's bound on the probability of at least ``correct`` right guesses, at most 1.

    Raises:
        AuditInputError: a count is negative or not an integer, ``m < 1``, more guesses than
            canaries, ``correct`` above the guesses, ``epsilon < 0`` or ``delta`` outside [0, 1].
    """
    _check_counts(m=m, k_plus=k_plus, k_minus=k_minus, correct=correct)
    _check_level("delta", delta, closed=True)
    if math.isnan(epsilon) or epsilon < 0:
        raise AuditInputError(f"epsilon must be >= 0, got {epsilon!r}")
    return _p_value(m, k_plus + k_minus, correct, epsilon, delta)


def epsilon_lower_bound(
    *, m: int, k_plus: int, k_minus: int, correct: int, beta: float = 0.05, delta: float = 0.0
) -> float:
    """The audit's lower bound on epsilon at confidence ``1 - beta`` (paper's ``get_eps_audit``).

    Args:
        m: the number of canaries, each included by a fair coin.
        k_plus: how many canaries were guessed members (the top scores).
        k_minus: how many were guessed non-members (the bottom scores).
        correct: how many of the ``k_plus + k_minus`` guesses were right.
        beta: one minus the confidence, in (0, 1).
        delta: the delta the run claims, in [0, 1].

    Returns:
        The largest epsilon (to the bisection's resolution) whose p-value is below ``beta``;
        0 when no epsilon is rejected. A run that is (eps, delta)-DP gets a bound above eps
        with probability at most ``beta``.

    Raises:
        AuditInputError: as :func:`p_value`, or ``beta`` outside (0, 1).
    """
    _check_counts(m=m, k_plus=k_plus, k_minus=k_minus, correct=correct)
    _check_level("beta", beta, closed=False)
    _check_level("delta", delta, closed=True)
    r, v = k_plus + k_minus, correct
    eps_min, eps_max = 0.0, 1.0  # keep p(eps_min) < beta and p(eps_max) >= beta
    while _p_value(m, r, v, eps_max, delta) < beta:
        eps_max += 1.0
    for _ in range(BISECTION_STEPS):
        eps = (eps_min + eps_max) / 2
        if _p_value(m, r, v, eps, delta) < beta:
            eps_min = eps
        else:
            eps_max = eps
    return eps_min


def count_correct(*, scores: np.ndarray, coins: np.ndarray, k: int) -> tuple[int, np.ndarray]:
    """Guess the top ``k`` scores members and the bottom ``k`` non-members; count right ones.

    Args:
        scores: ``(m,)``, higher = more likely a member.
        coins: bool ``(m,)``, the truth.
        k: guesses on each side.

    Returns:
        The number of right guesses and the guesses, int ``(m,)``: +1 member, -1 non-member,
        0 abstained. Ties are broken by canary index (a stable sort), never by the coins.
    """
    order = np.argsort(scores, kind="stable")
    guesses = np.zeros(len(scores), dtype=np.int64)
    guesses[order[len(scores) - k :]] = 1
    guesses[order[:k]] = -1
    correct = int(((guesses == 1) & coins).sum() + ((guesses == -1) & ~coins).sum())
    return correct, guesses
