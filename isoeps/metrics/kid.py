"""Kernel Inception Distance: unbiased MMD^2 with the cubic polynomial kernel.

``k(x, y) = (x.y / d + 1)^3``, the estimator of clean-fid's ``kernel_distance`` (tested
against it), averaged over random subsets of size ``min(n_fake, n_real, subset_size)``. We
report the mean and the standard deviation over subsets, with a seeded generator instead of
numpy's global state.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from isoeps.metrics.base import MetricInputs, MetricValue
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
        return [
            value(
                "kid",
                estimates.mean(),
                higher_is_better=False,
                n=len(fake),
                backbone=backbone,
                std=estimates.std(),
                details=details,
            )
        ]
