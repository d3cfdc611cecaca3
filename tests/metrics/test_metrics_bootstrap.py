"""Per-value intervals: half-sampling math against direct computation, coverage, Wilson."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest, norm

from isoeps.metrics import prdc as prdc_module
from isoeps.metrics.bootstrap import (
    HALF_SAMPLING,
    Interval,
    centred_percentile,
    ci_seed,
    half_samples,
    half_sampling_mean,
    resampled_fid,
    resampled_interval,
    wilson_interval,
)
from isoeps.metrics.common import value
from isoeps.metrics.fid import fid_interval, frechet_distance, gaussian_stats
from isoeps.metrics.kid import kid_resampled
from isoeps.metrics.prdc import full_scores, prdc, prdc_intervals, prdc_parts, prdc_scores


def _direct_fid(fake: np.ndarray, real: np.ndarray) -> float:
    return frechet_distance(*gaussian_stats(fake), *gaussian_stats(real))


def test_half_samples_are_seeded_halves_without_replacement() -> None:
    counts = half_samples(n=11, resamples=50, seed=3)
    assert counts.shape == (50, 11) and set(np.unique(counts)) == {0, 1}
    assert (counts.sum(axis=1) == 5).all()
    np.testing.assert_array_equal(counts, half_samples(n=11, resamples=50, seed=3))
    assert not np.array_equal(counts, half_samples(n=11, resamples=50, seed=4))
    with pytest.raises(ValueError, match="at least 4"):
        half_samples(n=3, resamples=1, seed=0)


def test_ci_seed_is_derived_from_the_seed_and_the_purpose() -> None:
    assert ci_seed(seed=0, purpose="fid") == ci_seed(seed=0, purpose="fid")
    assert ci_seed(seed=0, purpose="fid") != ci_seed(seed=1, purpose="fid")
    assert ci_seed(seed=0, purpose="fid") != ci_seed(seed=0, purpose="kid")


@pytest.mark.parametrize(
    ("n_fake", "n_real", "dim"),
    [
        (30, 50, 20),  # n_real > d: the real factor from an eigendecomposition, Gram route
        (60, 20, 20),  # n_real <= d: the centred real rows; n_fake > 2 r: the (r, r) route
        (15, 200, 40),  # both below d
        (300, 400, 8),  # n_fake > 2 d: the (d, d) route
    ],
)
def test_resampled_fid_is_the_fid_of_the_resampled_set(n_fake, n_real, dim) -> None:
    rng = np.random.default_rng(n_fake)
    fake = rng.normal(size=(n_fake, dim)) * 1.3 + 0.2
    real = rng.normal(size=(n_real, dim))
    halves = half_samples(n=n_fake, resamples=3, seed=0)
    with_replacement = rng.multinomial(n_fake, np.full(n_fake, 1 / n_fake), size=3)
    for counts in (halves, with_replacement):
        got = resampled_fid(fake=fake, real=real, counts=counts)
        want = [_direct_fid(np.repeat(fake, row, axis=0), real) for row in counts]
        np.testing.assert_allclose(got, want, rtol=1e-6)


def test_centred_percentile_puts_the_median_on_the_value() -> None:
    replicates = np.arange(1001, dtype=float)  # median 500, quantiles 25 and 975
    low, high = centred_percentile(replicates=replicates, value=100.0)
    assert (low, high) == pytest.approx((-375.0, 575.0))
    assert centred_percentile(replicates=replicates, value=100.0, bounds=(0, 500)) == (0.0, 500.0)


def test_the_mean_interval_covers_the_true_mean_about_95_percent() -> None:
    """CLIP-like scores, 100 * max(X, 0) with X ~ N(0.25, 0.15): known mean, 200 trials."""
    mu, sigma, n = 0.25, 0.15, 200
    truth = 100 * (mu * norm.cdf(mu / sigma) + sigma * norm.pdf(mu / sigma))
    rng = np.random.default_rng(0)
    hits = 0
    for trial in range(200):
        scores = 100 * np.clip(rng.normal(mu, sigma, size=n), 0, None)
        ci = half_sampling_mean(scores=scores, resamples=200, seed=trial, bounds=(0, 100))
        hits += ci.low <= truth <= ci.high
    assert 0.88 <= hits / 200 <= 0.99, hits


def test_the_fid_interval_covers_the_true_fid_about_95_percent() -> None:
    """Samples from N(m, S) against a fixed real set: the true value is the closed-form FID of
    N(m, S) against the real set's Gaussian (the interval is conditional on the real set)."""
    rng = np.random.default_rng(1)
    dim, n = 2, 300
    mean, scale = np.array([0.5, -0.2]), np.array([1.2, 0.8])
    real = rng.normal(size=(3000, dim))
    truth = frechet_distance(mean, np.diag(scale**2), *gaussian_stats(real))
    hits, trials = 0, 150
    for trial in range(trials):
        fake = rng.normal(size=(n, dim)) * scale + mean
        fid = _direct_fid(fake, real)
        ci = fid_interval(fake=fake, real=real, fid=fid, resamples=100, seed=trial)
        hits += ci.low <= truth <= ci.high
    assert 0.88 <= hits / trials <= 0.99, hits


def test_kid_resampled_is_the_unbiased_mmd_of_each_half_less_the_real_term() -> None:
    rng = np.random.default_rng(2)
    dim = 6
    fake, real = rng.normal(size=(30, dim)), rng.normal(size=(25, dim)) + 0.3

    def kernel(a, b):
        return (a @ b.T / dim + 1) ** 3

    def unbiased_mmd(x, y):
        kxx, kyy = kernel(x, x), kernel(y, y)
        within_x = (kxx.sum() - np.trace(kxx)) / (len(x) * (len(x) - 1))
        within_y = (kyy.sum() - np.trace(kyy)) / (len(y) * (len(y) - 1))
        return within_x + within_y - 2 * kernel(x, y).mean()

    kyy = kernel(real, real)
    real_term = (kyy.sum() - np.trace(kyy)) / (25 * 24)
    counts = half_samples(n=30, resamples=5, seed=0)
    got = kid_resampled(fake, real, counts=counts, chunk_size=7) + real_term
    want = [unbiased_mmd(fake[row.astype(bool)], real) for row in counts]
    np.testing.assert_allclose(got, want, rtol=1e-10)


def test_prdc_on_a_half_is_prdc_of_that_half_with_the_real_balls() -> None:
    """Precision, density and coverage only use the real set's balls, so a half-sample's
    values from the parts are the values of the half itself."""
    rng = np.random.default_rng(3)
    real, fake = rng.normal(size=(200, 4)), rng.normal(size=(160, 4)) * 0.9 + 0.3
    parts = prdc_parts(real, fake, chunk_size=37, dtype="float64")
    counts = half_samples(n=160, resamples=4, seed=0)
    scores = prdc_scores(parts, counts=counts)
    for b, row in enumerate(counts):
        direct = prdc(real, fake[row.astype(bool)], dtype="float64")
        for name in ("precision", "density", "coverage"):
            assert scores[name][b] == pytest.approx(direct[name], abs=1e-12), name


def test_prdc_pairs_are_capped_per_real_point_without_changing_the_values(monkeypatch) -> None:
    rng = np.random.default_rng(4)
    real, fake = rng.normal(size=(120, 3)), rng.normal(size=(300, 3)) * 0.5
    full = prdc(real, fake, chunk_size=64, dtype="float64")
    monkeypatch.setattr(prdc_module, "MAX_PAIRS_PER_REAL", 2)
    parts = prdc_parts(real, fake, chunk_size=64, dtype="float64")
    assert parts.covering.getnnz(axis=1).max() == 2 and parts.recalling.getnnz(axis=1).max() == 2
    assert full_scores(parts) == pytest.approx(full, abs=1e-12)


def test_prdc_intervals_leave_recall_without_one() -> None:
    rng = np.random.default_rng(5)
    real, fake = rng.normal(size=(200, 4)), rng.normal(size=(200, 4)) + 0.2
    parts = prdc_parts(real, fake)
    scores = full_scores(parts)
    intervals = prdc_intervals(parts, scores=scores, resamples=50, seed=0)
    assert intervals["recall"] is None
    for name in ("precision", "density", "coverage"):
        ci = intervals[name]
        assert ci.low <= scores[name] <= ci.high and ci.resamples == 50, name
    assert prdc_intervals(parts, scores=scores, resamples=0, seed=0) == dict.fromkeys(scores)


@pytest.mark.parametrize(
    ("successes", "trials", "low", "high"),
    # Newcombe (1998), Statistics in Medicine 17:857-872, worked examples, Wilson score method.
    [(81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611)],
)
def test_wilson_matches_the_textbook_and_scipy(successes, trials, low, high) -> None:
    ci = wilson_interval(proportion=successes / trials, n=trials)
    assert (ci.low, ci.high) == pytest.approx((low, high), abs=1e-4)
    scipy_ci = binomtest(successes, trials).proportion_ci(method="wilson")
    assert (ci.low, ci.high) == pytest.approx((scipy_ci.low, scipy_ci.high), abs=1e-12)
    assert ci.provenance() == {
        "level": 0.95,
        "method": "wilson",
        "resampled": None,
        "resamples": None,
        "seed": None,
    }


def test_a_value_records_its_interval_in_the_schema() -> None:
    ci = resampled_interval(replicates=np.linspace(1.0, 3.0, 201), value=2.5, seed=7)
    row = value("fid", 2.5, higher_is_better=False, n=10, ci=ci).to_dict()
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((1.55, 3.45))
    assert row["details"]["ci"] == {
        "level": 0.95,
        "method": HALF_SAMPLING,
        "resampled": "fake",
        "resamples": 201,
        "seed": 7,
    }
    plain = value("fid", 2.5, higher_is_better=False, n=10).to_dict()
    assert plain["ci_low"] is None and plain["ci_high"] is None and "ci" not in plain["details"]
    assert isinstance(ci, Interval)
