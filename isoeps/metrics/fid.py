"""Fréchet distance between Gaussian fits of two feature sets (FID).

Statistics are float64. The matrix square root term is computed as
``tr sqrt(S1^1/2 S2 S1^1/2)`` from symmetric eigendecompositions, which stays real and finite
when a covariance is singular (n < d), where ``scipy.linalg.sqrtm`` of ``S1 S2`` needs an
epsilon offset. It matches ``cleanfid.fid.frechet_distance`` (tested). FID is biased at small
n and unstable for n < d: n is always recorded, and values compare only at equal n.
"""

from __future__ import annotations

import warnings

import numpy as np

from isoeps.metrics.base import MetricInputs, MetricValue
from isoeps.metrics.bootstrap import (
    Interval,
    ci_seed,
    optional_half_samples,
    resampled_fid,
    resampled_interval,
)
from isoeps.metrics.common import FeatureMetric, value
from isoeps.metrics.features import check_features


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance in float64."""
    features = check_features(features, what="fid features").astype(np.float64)
    if features.shape[0] < 2:
        raise ValueError(f"FID needs at least 2 feature vectors, got {features.shape[0]}")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    eigenvalues, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(eigenvalues, 0, None))) @ vectors.T


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """``|mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr sqrt(S1 S2)`` in float64.

    Args:
        mu1: the mean of the first feature set.
        sigma1: its covariance.
        mu2: the mean of the second feature set.
        sigma2: its covariance.

    Returns:
        The Frechet distance.

    Raises:
        ValueError: the dimensions differ.
    """
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1, sigma2 = (
        np.atleast_2d(sigma1).astype(np.float64),
        np.atleast_2d(sigma2).astype(np.float64),
    )
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(f"FID: feature dimensions differ: {mu1.shape} vs {mu2.shape}")
    root1 = _psd_sqrt(sigma1)
    middle = root1 @ sigma2 @ root1
    eigenvalues = np.linalg.eigvalsh((middle + middle.T) / 2)
    tr_covmean = np.sqrt(np.clip(eigenvalues, 0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean)


def _frechet_low_rank(fake: np.ndarray, real: np.ndarray) -> float:
    """Exact FID when n < d: with S1 = A'A and S2 = B'B (centred, scaled features), the
    nonzero eigenvalues of S1 S2 are those of (A B')(A B')', so tr sqrt(S1 S2) is the nuclear
    norm of the small (n1, n2) matrix A B'. Costs O(n1 n2 d) instead of O(d^3)."""
    a = fake.astype(np.float64)
    b = real.astype(np.float64)
    diff = a.mean(axis=0) - b.mean(axis=0)
    a = (a - a.mean(axis=0)) / np.sqrt(a.shape[0] - 1)
    b = (b - b.mean(axis=0)) / np.sqrt(b.shape[0] - 1)
    nuclear = np.linalg.svd(a @ b.T, compute_uv=False).sum()
    return float(diff @ diff + (a * a).sum() + (b * b).sum() - 2 * nuclear)


def fid_from_features(fake: np.ndarray, real: np.ndarray) -> tuple[float, dict[str, object]]:
    """FID of two feature sets, with details (n of each, and a flag when n < d).

    Args:
        fake: ``(N, D)`` sample features.
        real: ``(M, D)`` reference features.

    Returns:
        ``(fid, details)``; the FID is clamped at 0. With ``min(N, M) <= D`` it is computed by the
        exact low-rank route (with a warning) and ``details`` has ``n_below_dim``.

    Raises:
        ValueError: the dimensions differ, a set has fewer than 2 rows, or the features are
            invalid.
    """
    fake = check_features(fake, what="fid fake features")
    real = check_features(real, what="fid real features")
    if fake.shape[1] != real.shape[1]:
        raise ValueError(f"FID: feature dimensions differ: {fake.shape[1]} vs {real.shape[1]}")
    dim = fake.shape[1]
    n_min = min(fake.shape[0], real.shape[0])
    if n_min < 2:
        raise ValueError(f"FID needs at least 2 feature vectors in each set, got {n_min}")
    details: dict[str, object] = {"n_fake": int(fake.shape[0]), "n_real": int(real.shape[0])}
    if n_min <= dim:
        details["n_below_dim"] = True
        warnings.warn(
            f"FID with n={n_min} <= feature dim {dim}: the covariance is singular and the "
            "value is strongly biased; compare only at equal n",
            RuntimeWarning,
            stacklevel=2,
        )
        return max(_frechet_low_rank(fake, real), 0.0), details
    mu1, sigma1 = gaussian_stats(fake)
    mu2, sigma2 = gaussian_stats(real)
    return max(frechet_distance(mu1, sigma1, mu2, sigma2), 0.0), details


def fid_interval(
    *,
    fake: np.ndarray,
    real: np.ndarray,
    fid: float,
    resamples: int,
    seed: int,
    device: str = "cpu",
) -> Interval | None:
    """The FID's half-sampling interval over the samples (the real set fixed).

    Args:
        fake: ``(N, D)`` sample features.
        real: ``(M, D)`` reference features.
        fid: the FID of the full sets.
        resamples: how many half-samples; 0 for none.
        seed: the metric inputs' seed; the half-samples' seed is derived from it.
        device: torch device of the resampled FIDs.

    Returns:
        The interval; None with no resamples or fewer than ``MIN_SAMPLES`` samples.
    """
    seed = ci_seed(seed=seed, purpose="fid")
    counts = optional_half_samples(n=len(fake), resamples=resamples, seed=seed)
    if counts is None:
        return None
    replicates = resampled_fid(fake=fake, real=real, counts=counts, device=device)
    return resampled_interval(replicates=replicates, value=fid, seed=seed, bounds=(0.0, None))


class FIDMetric(FeatureMetric):
    """FID of the samples against the reference split (default backbone: Inception)."""

    name = "fid"

    def evaluate(self, inputs: MetricInputs) -> list[MetricValue]:
        backbone, fake, real = self.features(inputs)
        number, details = fid_from_features(fake, real)
        ci = fid_interval(
            fake=fake,
            real=real,
            fid=number,
            resamples=self.options.ci_resamples,
            seed=inputs.seed,
            device=self.options.device or inputs.device,
        )
        return [
            value(
                "fid",
                number,
                higher_is_better=False,
                n=len(fake),
                backbone=backbone,
                details=details,
                ci=ci,
            )
        ]
