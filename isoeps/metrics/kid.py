"""Kernel Inception Distance: unbiased MMD^2 with the cubic polynomial kernel.

``k(x, y) = (x.y / d + 1)^3``, the estimator of clean-fid's ``kernel_distance`` (tested
against it), averaged over random subsets of size ``min(n_fake, n_real, subset_size)``. We
report the mean and the standard deviation over subsets, with a seeded generator instead of
numpy's global state.

The confidence interval is not built from that standard deviation. It is the spread of one
subset's estimate, not of their mean, and subsets of the same points are not independent, so
``std / sqrt(num_subsets)`` shrinks without bound as subsets are added; and when the subset
size is the number of samples (the default at n <= 1000) every subset holds all the samples,
so the spread leaves out the samples' own variation, the one that matters when methods are
compared. The mean over subsets estimates, without bias, the U-statistic of the full sets (the
average of a U-statistic over all subsets is the full one), so the interval is that
statistic's half-sampling interval over the samples (:func:`kid_resampled`,
:mod:`isoeps.metrics.bootstrap`), centred on the reported mean.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from isoeps.metrics.base import MetricInputs, MetricValue
from isoeps.metrics.bootstrap import (
    Interval,
    ci_seed,
    optional_half_samples,
    resampled_interval,
)
from isoeps.metrics.common import FeatureMetric, FeatureOptions, value
from isoeps.metrics.features import check_features


def kid_subsets(
    fake: np.ndarray,
    real: np.ndarray,
    *,
    num_subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> np.ndarray:
    """The unbiased MMD^2 estimate on each of ``num_subsets`` random subsets (float64).

    Args:
        fake: ``(N, D)`` sample features.
        real: ``(M, D)`` reference features.
        num_subsets: how many subsets.
        subset_size: the subset size m, capped at ``min(N, M)``.
        seed: the seed of the subset draws.

    Returns:
        float64 ``(num_subsets,)``, with the cubic polynomial kernel.

    Raises:
        ValueError: the dimensions differ, m < 2, or the features are invalid.
    """
    fake = check_features(fake, what="kid fake features").astype(np.float64)
    real = check_features(real, what="kid real features").astype(np.float64)
    if fake.shape[1] != real.shape[1]:
        raise ValueError(f"KID: feature dimensions differ: {fake.shape[1]} vs {real.shape[1]}")
    dim = fake.shape[1]
    m = min(fake.shape[0], real.shape[0], subset_size)
    if m < 2:
        raise ValueError(f"KID needs at least 2 samples in each set, got subset size {m}")
    rng = np.random.default_rng(seed)
    estimates = np.empty(num_subsets)
    for i in range(num_subsets):
        x = real[rng.choice(real.shape[0], m, replace=False)]
        y = fake[rng.choice(fake.shape[0], m, replace=False)]
        a = (x @ x.T / dim + 1) ** 3 + (y @ y.T / dim + 1) ** 3
        b = (x @ y.T / dim + 1) ** 3
        estimates[i] = ((a.sum() - np.diag(a).sum()) / (m - 1) - b.sum() * 2 / m) / m
    return estimates


def kid_resampled(
    fake: np.ndarray, real: np.ndarray, *, counts: np.ndarray, chunk_size: int = 1024
) -> np.ndarray:
    """The unbiased MMD^2 of each resample of the fake set against the real set, less the
    real-real term (a constant under resampling of the samples).

    A resample weighs fake row ``i`` by ``w_i``; the fake-fake term sums ``w_i w_j k_ij`` over
    ``i != j`` (the pairs of distinct drawn rows) over its number of such pairs. The kernel
    is computed once, ``chunk_size`` fake rows at a time, so memory is O(chunk_size * (N + M)).

    Args:
        fake: ``(N, D)`` sample features.
        real: ``(M, D)`` reference features.
        counts: ``(B, N)`` draws per sample (0/1 for a half-sample).
        chunk_size: fake rows per kernel block.

    Returns:
        float64 ``(B,)``.
    """
    fake = check_features(fake, what="kid fake features").astype(np.float64)
    real = check_features(real, what="kid real features").astype(np.float64)
    dim = fake.shape[1]
    weights = np.asarray(counts, dtype=np.float64)
    quadratic = np.zeros(len(weights))
    diagonal, cross = np.empty(len(fake)), np.empty(len(fake))
    for start in range(0, len(fake), chunk_size):
        block = fake[start : start + chunk_size]
        kernel = (block @ fake.T / dim + 1) ** 3
        quadratic += np.einsum(
            "bc,cb->b", weights[:, start : start + len(block)], kernel @ weights.T
        )
        diagonal[start : start + len(block)] = ((block * block).sum(1) / dim + 1) ** 3
        cross[start : start + len(block)] = ((block @ real.T / dim + 1) ** 3).sum(1)
    size, squares = weights.sum(1), (weights * weights).sum(1)
    within = (quadratic - weights**2 @ diagonal) / (size * size - squares)
    return within - 2 * (weights @ cross) / (size * len(real))


def kid_interval(
    *, fake: np.ndarray, real: np.ndarray, kid: float, resamples: int, seed: int
) -> Interval | None:
    """KID's half-sampling interval over the samples (the real set fixed), centred on ``kid``.

    Args:
        fake: ``(N, D)`` sample features.
        real: ``(M, D)`` reference features.
        kid: the reported KID (the mean over subsets).
        resamples: how many half-samples; 0 for none.
        seed: the metric inputs' seed; the half-samples' seed is derived from it.

    Returns:
        The interval; None with no resamples or fewer than ``MIN_SAMPLES`` samples.
    """
    seed = ci_seed(seed=seed, purpose="kid")
    counts = optional_half_samples(n=len(fake), resamples=resamples, seed=seed)
    if counts is None:
        return None
    replicates = kid_resampled(fake, real, counts=counts)
    return resampled_interval(replicates=replicates, value=kid, seed=seed)


class KIDMetric(FeatureMetric):
    """KID mean ± std over subsets of the samples against the reference split."""

    name = "kid"

    class Options(FeatureOptions):
        num_subsets: int = Field(default=100, ge=1)
        subset_size: int = Field(default=1000, ge=2)

    options: Options

    def evaluate(self, inputs: MetricInputs) -> list[MetricValue]:
        backbone, fake, real = self.features(inputs)
        num_subsets, subset_size = self.options.num_subsets, self.options.subset_size
        estimates = kid_subsets(
            fake, real, num_subsets=num_subsets, subset_size=subset_size, seed=inputs.seed
        )
        details = {
            "num_subsets": num_subsets,
            "subset_size": int(min(len(fake), len(real), subset_size)),
            "n_real": len(real),
        }
        ci = kid_interval(
            fake=fake,
            real=real,
            kid=float(estimates.mean()),
            resamples=self.options.ci_resamples,
            seed=inputs.seed,
        )
        return [
            value(
                "kid",
                estimates.mean(),
                higher_is_better=False,
                n=len(fake),
                backbone=backbone,
                std=estimates.std(),
                details=details,
                ci=ci,
            )
        ]
