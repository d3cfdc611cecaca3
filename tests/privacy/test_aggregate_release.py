"""The DPAgg-TI mechanism on fixed embeddings, through ``PrivateData.aggregate``:
clipping bound, calibrated noise std, Poisson subsampling, constant divisor q N, ledger."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from isoeps.accountants import SubsampledGaussian
from isoeps.privacy.guard import PrivateData, clip_rows

DIM = 8


class Fixed:
    """N records; record i's embedding is row i of ``vectors``. Counts every access."""

    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors = vectors
        self.taken: list[np.ndarray] = []

    def __len__(self) -> int:
        return len(self.vectors)

    def take(self, indices: np.ndarray) -> np.ndarray:
        self.taken.append(np.asarray(indices))
        return self.vectors[indices]


def _guard(vectors: np.ndarray, seed: int = 0) -> tuple[PrivateData, Fixed]:
    data = Fixed(vectors)
    return PrivateData(data, seed=seed), data


def test_clip_rows_bounds_every_row_and_keeps_short_ones() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(200, DIM)) * rng.uniform(0.01, 10, size=(200, 1))
    clipped = clip_rows(vectors, 1.5)
    norms = np.linalg.norm(clipped, axis=1)
    assert np.all(norms <= 1.5 + 1e-12)
    short = np.linalg.norm(vectors, axis=1) <= 1.5
    np.testing.assert_allclose(clipped[short], vectors[short])
    # Long rows keep their direction and land exactly on the bound.
    np.testing.assert_allclose(norms[~short], 1.5)
    cosine = np.sum(clipped * vectors, axis=1) / (norms * np.linalg.norm(vectors, axis=1))
    np.testing.assert_allclose(cosine, 1.0)


def test_release_sum_respects_the_clipping_bound() -> None:
    # Huge embeddings, negligible noise: the undivided release is a sum of k vectors of norm C.
    vectors = np.full((500, DIM), 100.0)
    guard, data = _guard(vectors)
    clip = 0.7
    release = guard.aggregate(
        lambda rows: rows, dim=DIM, sample_rate=0.1, clip_norm=clip, noise_multiplier=1e-9
    )
    total = release.value * release.divisor
    assert release.sampled == len(data.taken[0]) > 0
    assert np.linalg.norm(total) <= release.sampled * clip * (1 + 1e-9)
    np.testing.assert_allclose(np.linalg.norm(total), release.sampled * clip, rtol=1e-6)


def test_noise_has_the_calibrated_std() -> None:
    # Zero embeddings: the undivided release is pure N(0, (sigma C)^2) noise.
    sigma, clip, n, q = 1.7, 0.5, 50, 0.2
    guard, _ = _guard(np.zeros((n, DIM)), seed=3)
    draws = []
    for _ in range(2000):
        release = guard.aggregate(
            lambda rows: rows, dim=DIM, sample_rate=q, clip_norm=clip, noise_multiplier=sigma
        )
        assert release.noise_std == pytest.approx(sigma * clip)
        draws.append(release.value * release.divisor)
    standardised = np.concatenate(draws) / (sigma * clip)
    # 16k draws: the sample std is within 2% of 1 with overwhelming probability.
    assert np.std(standardised) == pytest.approx(1.0, abs=0.02)
    assert abs(np.mean(standardised)) < 0.05
    assert stats.kstest(standardised, "norm").pvalue > 1e-3


def test_subsampling_is_poisson() -> None:
    n, q, trials = 400, 0.05, 1500
    guard, data = _guard(np.ones((n, DIM)), seed=5)
    for _ in range(trials):
        guard.aggregate(
            lambda rows: rows, dim=DIM, sample_rate=q, clip_norm=1.0, noise_multiplier=1.0
        )
    taken = data.taken  # empty subsamples are never fetched
    sizes = np.array([len(t) for t in taken] + [0] * (trials - len(taken)))
    # Binomial(N, q) sizes: mean Nq = 20, variance Nq(1-q) = 19 (a fixed-size sampler has 0).
    assert sizes.mean() == pytest.approx(n * q, abs=4 * np.sqrt(n * q * (1 - q) / trials))
    assert sizes.var() == pytest.approx(n * q * (1 - q), rel=0.15)
    counts = np.bincount(sizes, minlength=sizes.max() + 1)
    expected = stats.binom.pmf(np.arange(len(counts)), n, q) * trials
    keep = expected >= 5  # chi-square on the well-populated cells
    observed, wanted = counts[keep], expected[keep]
    chi2 = np.sum((observed - wanted) ** 2 / wanted)
    assert stats.chi2.sf(chi2, keep.sum() - 1) > 1e-3
    # Every record is included independently at rate q.
    inclusion = np.bincount(np.concatenate(taken), minlength=n) / trials
    assert inclusion.mean() == pytest.approx(q, rel=0.05)
    assert inclusion.min() > 0


def test_divisor_is_the_constant_q_n_not_the_realised_count() -> None:
    n, q = 300, 0.1
    unit = np.ones(DIM) / np.sqrt(DIM)
    guard, _ = _guard(np.tile(unit, (n, 1)), seed=7)
    sampled = set()
    for _ in range(20):
        release = guard.aggregate(
            lambda rows: rows, dim=DIM, sample_rate=q, clip_norm=1.0, noise_multiplier=1e-9
        )
        assert release.divisor == pytest.approx(q * n)
        np.testing.assert_allclose(release.value, release.sampled * unit / (q * n), atol=1e-9)
        sampled.add(release.sampled)
    assert len(sampled) > 1  # the realised count varied, the divisor did not


def test_each_release_is_one_subsampled_gaussian_in_the_ledger() -> None:
    guard, _ = _guard(np.zeros((100, DIM)))
    guard.aggregate(
        lambda rows: rows, dim=DIM, sample_rate=0.3, clip_norm=2.0, noise_multiplier=1.25
    )
    assert guard.ledger.entries == (SubsampledGaussian(1.25, 0.3, 1),)


def test_embed_shape_is_checked() -> None:
    guard, _ = _guard(np.zeros((100, DIM)))
    with pytest.raises(ValueError, match="one 8-vector per record"):
        guard.aggregate(
            lambda rows: rows[:, :3], dim=DIM, sample_rate=0.5, clip_norm=1.0, noise_multiplier=1.0
        )
