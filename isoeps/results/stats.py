"""The statistics behind every comparison a report makes: pure functions of numbers.

- :func:`t_interval`: the mean over seeds with its t-based CI (half-width
  ``t_{(1+level)/2, n-1} · s / √n``), none for one seed.
- :func:`compare_paired`: A − B at equal ε, paired seed by seed: the paired t-test and its
  CI (with at most :data:`EXACT_MAX_N` pairs also the exact sign-flip permutation p, which
  assumes no normality); with one seed, the two values' per-value (bootstrap) CIs combined.
- :func:`holm`: Holm's step-down adjustment across the comparisons of one table.
- :func:`better`: whether A beats B at the level, in the metric's direction.
- :func:`resolution_hint`: what would resolve a difference smaller than its CI's half-width.

No isoeps import (``results`` is a leaf); scipy supplies the distributions and the tests.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

#: The confidence level of every interval and test.
LEVEL = 0.95
#: Up to this many pairs the sign-flip permutation p is exact (all 2^n sign patterns).
EXACT_MAX_N = 10
#: The paired t-test's name, as reports print it.
PAIRED_T = "paired t-test"
#: The one-seed comparison's name: it sees sampling noise only, not training randomness.
PER_VALUE = "per-value CIs combined (one seed: sampling noise only)"
#: The largest seed count :func:`seeds_needed` searches.
MAX_SEEDS = 1000


@dataclass(frozen=True)
class Interval:
    """A mean over ``n`` seeds and its two-sided CI (``half_width`` None when n < 2)."""

    mean: float
    half_width: float | None
    n: int
    level: float = LEVEL

    @property
    def low(self) -> float | None:
        return None if self.half_width is None else self.mean - self.half_width

    @property
    def high(self) -> float | None:
        return None if self.half_width is None else self.mean + self.half_width


@dataclass(frozen=True)
class Comparison:
    """A − B: the difference, its CI, the p-value, the test and the n of pairs behind them."""

    diff: float
    low: float
    high: float
    p_value: float
    n: int
    test: str
    level: float = LEVEL
    #: The exact sign-flip permutation p (``n <= EXACT_MAX_N`` paired seeds), else None.
    permutation_p: float | None = None
    #: The standard deviation of the paired differences (None with one seed).
    diff_sd: float | None = None

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    @property
    def resolved(self) -> bool:
        """Whether the difference is larger than its CI's half-width (the CI excludes 0)."""
        return abs(self.diff) > self.half_width


def t_interval(values: Sequence[float], *, level: float = LEVEL) -> Interval:
    """The mean of ``values`` (one per seed) and its t-based CI.

    Args:
        values: the finite values, one per seed.
        level: the confidence level.

    Returns:
        The interval; ``half_width`` is None for a single value.

    Raises:
        ValueError: ``values`` is empty.
    """
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        raise ValueError("t_interval needs at least one value")
    mean = float(data.mean())
    if data.size < 2:
        return Interval(mean, None, 1, level)
    scale = stats.t.ppf((1 + level) / 2, data.size - 1) * data.std(ddof=1) / math.sqrt(data.size)
    return Interval(mean, float(scale), int(data.size), level)


def paired_t(a: Sequence[float], b: Sequence[float], *, level: float = LEVEL) -> Comparison:
    """The paired t-test of ``a`` against ``b`` (pair ``i`` is one seed) and the t-CI of the
    mean difference; with at most :data:`EXACT_MAX_N` pairs also the exact sign-flip p.

    Args:
        a: A's values, in pair order.
        b: B's values, in the same order.
        level: the confidence level.

    Returns:
        The comparison (``test`` is :data:`PAIRED_T`).

    Raises:
        ValueError: fewer than two pairs, or unequal lengths.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.size < 2:
        raise ValueError(
            f"paired_t needs two equal-length sequences of >= 2, got {a.size}/{b.size}"
        )
    diffs = a - b
    diff, sd = float(diffs.mean()), float(diffs.std(ddof=1))
    exact = sign_flip_p(diffs) if a.size <= EXACT_MAX_N else None
    if np.allclose(diffs, diff, rtol=1e-12, atol=0.0):
        # equal differences (to rounding): scipy's t is inf, or nan at 0, and it warns of
        # cancellation; the CI is the point itself
        sd, low, high = 0.0, diff, diff
        p_value = float(np.allclose(a, b, rtol=1e-12, atol=0.0))  # 1 when A and B are equal
    else:
        result = stats.ttest_rel(a, b)
        interval = result.confidence_interval(confidence_level=level)
        low, high, p_value = float(interval.low), float(interval.high), float(result.pvalue)
    return Comparison(diff, low, high, p_value, int(a.size), PAIRED_T, level, exact, sd)


def sign_flip_p(diffs: Sequence[float]) -> float:
    """The exact two-sided sign-flip permutation p of the mean paired difference: under
    "no difference" each pair's sign is a fair coin, so all ``2^n`` sign patterns are equally
    likely. Its smallest value is ``2 / 2^n`` (0.25 with three pairs, 0.0625 with five).

    Args:
        diffs: the paired differences.

    Returns:
        The p-value.
    """
    result = stats.permutation_test(
        (np.asarray(diffs, dtype=float),),
        np.mean,
        permutation_type="samples",  # one sample: flips each difference's sign
        n_resamples=np.inf,  # exact: every sign pattern
        alternative="two-sided",
    )
    return float(result.pvalue)


def per_value_comparison(
    a: float,
    a_ci: tuple[float, float],
    b: float,
    b_ci: tuple[float, float],
    *,
    level: float = LEVEL,
    ci_level: float = LEVEL,
) -> Comparison:
    """A − B from one seed each, with each value's own (bootstrap) CI turned into a standard
    error (half-width / z) and the two combined as independent (a normal approximation).

    Args:
        a: A's value.
        a_ci: A's per-value CI ``(low, high)``.
        b: B's value.
        b_ci: B's per-value CI.
        level: the level of the returned CI and test.
        ci_level: the level the per-value CIs were computed at.

    Returns:
        The comparison (``test`` is :data:`PER_VALUE`, ``n`` is 1).
    """
    z_in = stats.norm.ppf((1 + ci_level) / 2)
    se = math.hypot((a_ci[1] - a_ci[0]) / (2 * z_in), (b_ci[1] - b_ci[0]) / (2 * z_in))
    diff = a - b
    if se == 0.0:
        return Comparison(diff, diff, diff, float(diff == 0.0), 1, PER_VALUE, level)
    half = float(stats.norm.ppf((1 + level) / 2)) * se
    p_value = float(2 * stats.norm.sf(abs(diff) / se))
    return Comparison(diff, diff - half, diff + half, p_value, 1, PER_VALUE, level)


def compare_paired(
    a: Mapping[int, float],
    b: Mapping[int, float],
    *,
    a_ci: tuple[float, float] | None = None,
    b_ci: tuple[float, float] | None = None,
    level: float = LEVEL,
) -> Comparison | None:
    """A − B over the seeds both have: the paired t-test from two shared seeds on; with one
    shared seed, the per-value CIs combined when both values carry one.

    Args:
        a: seed -> A's value (finite values only).
        b: seed -> B's value.
        a_ci: A's per-value CI at its one seed, if any.
        b_ci: B's per-value CI at its one seed, if any.
        level: the confidence level.

    Returns:
        The comparison, or None when there is nothing to test (no shared seed, or one shared
        seed without both per-value CIs).
    """
    seeds = sorted(set(a) & set(b))
    if len(seeds) >= 2:
        return paired_t([a[s] for s in seeds], [b[s] for s in seeds], level=level)
    if len(seeds) == 1 and a_ci is not None and b_ci is not None:
        return per_value_comparison(a[seeds[0]], a_ci, b[seeds[0]], b_ci, level=level)
    return None


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (Holm 1979), in the input order: the i-th smallest
    p is multiplied by (m − i), and the running maximum keeps them monotone.

    Args:
        p_values: the raw p-values of one family (one table).

    Returns:
        The adjusted p-values, capped at 1.
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def better(comparison: Comparison, *, higher_is_better: bool, p_value: float | None = None) -> bool:
    """Whether A (the difference's first term) is better than B at the comparison's level.

    Args:
        comparison: A − B.
        higher_is_better: the metric's direction.
        p_value: the p-value to judge by (e.g. Holm-adjusted); None for the raw one.

    Returns:
        True when the p-value is below ``1 − level`` and A − B points the better way.
    """
    p = comparison.p_value if p_value is None else p_value
    towards = comparison.diff > 0 if higher_is_better else comparison.diff < 0
    return towards and p < 1 - comparison.level


def seeds_needed(*, diff: float, sd: float, level: float = LEVEL) -> int | None:
    """The fewest paired seeds whose t-CI half-width ``t · sd / √n`` is below ``|diff|``,
    taking the difference and its spread as they are now.

    Args:
        diff: the mean paired difference.
        sd: the standard deviation of the paired differences.
        level: the confidence level.

    Returns:
        That count, or None when even :data:`MAX_SEEDS` would not do.
    """
    for n in range(2, MAX_SEEDS + 1):
        if stats.t.ppf((1 + level) / 2, n - 1) * sd / math.sqrt(n) < abs(diff):
            return n
    return None


def resolution_hint(comparison: Comparison) -> str | None:
    """What the report says when the CI of a difference is wider than the difference itself.

    Args:
        comparison: A − B.

    Returns:
        The sentence naming what would resolve it, or None when the difference is resolved.
    """
    if comparison.resolved:
        return None
    if comparison.half_width == 0.0:
        return "A and B are equal at every paired seed"
    width = f"the {comparison.level:.0%} CI (±{comparison.half_width:.3g}) is wider than the "
    width += f"difference ({comparison.diff:+.3g}), so no ordering is implied"
    if comparison.diff_sd is None:
        return (
            f"{width}: with one seed only sampling noise is measured; more seeds (a paired "
            "test across them) or more samples per cell would resolve it"
        )
    needed = seeds_needed(diff=comparison.diff, sd=comparison.diff_sd, level=comparison.level)
    seeds = (
        f"about {needed} paired seeds (now {comparison.n})"
        if needed is not None
        else f"far more than {MAX_SEEDS} seeds"
    )
    return (
        f"{width}: at this seed-to-seed spread, {seeds} would resolve a difference this "
        "size; more samples per cell help only as far as sampling noise makes up the spread"
    )
