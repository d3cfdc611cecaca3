"""FID, KID and PRDC on features, each against its reference implementation."""

from __future__ import annotations

import numpy as np
import pytest

from isoeps.metrics.fid import fid_from_features, frechet_distance, gaussian_stats
from isoeps.metrics.kid import kid_subsets
from isoeps.metrics.prdc import prdc


def _clouds(n: int, d: int, shift: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, d)).astype(np.float32)
    b = (rng.normal(size=(n, d)) + shift).astype(np.float32)
    return a, b


def test_frechet_matches_cleanfid() -> None:
    from cleanfid.fid import frechet_distance as reference

    a, b = _clouds(400, 32, 0.3)
    b[:, :5] *= 2.0
    mu1, s1 = gaussian_stats(a)
    mu2, s2 = gaussian_stats(b)
    ours = frechet_distance(mu1, s1, mu2, s2)
    theirs = float(reference(mu1, s1, mu2, s2))
    assert ours == pytest.approx(theirs, rel=1e-6, abs=1e-8)
    assert ours > 1.0


def test_fid_of_a_set_with_itself_is_zero() -> None:
    a, _ = _clouds(300, 16, 0.0)
    value, details = fid_from_features(a, a)
    assert abs(value) < 1e-6
    assert details["n_fake"] == 300 and "n_below_dim" not in details


def test_fid_below_dimension_warns_and_stays_finite() -> None:
    a, b = _clouds(20, 64, 0.5)
    with pytest.warns(RuntimeWarning, match="n=20"):
        value, details = fid_from_features(a, b)
    assert np.isfinite(value) and value > 0 and details["n_below_dim"] is True
    # The low-rank path is exact: it equals the full eigendecomposition route.
    mu1, s1 = gaussian_stats(a)
    mu2, s2 = gaussian_stats(b)
    assert value == pytest.approx(frechet_distance(mu1, s1, mu2, s2), rel=1e-6)


def test_fid_rejects_nan_features() -> None:
    a, b = _clouds(50, 8, 0.0)
    a[3, 2] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        fid_from_features(a, b)


def test_kid_matches_cleanfid_with_full_subsets() -> None:
    from cleanfid.fid import kernel_distance

    a, b = _clouds(120, 16, 0.4)
    # With one subset covering all points the estimator is permutation invariant: exact match.
    ours = kid_subsets(a, b, num_subsets=3, subset_size=10_000)
    theirs = kernel_distance(
        a.astype(np.float64), b.astype(np.float64), num_subsets=3, max_subset_size=10_000
    )
    np.testing.assert_allclose(ours, theirs, rtol=1e-9)
    assert ours.std() < 1e-12 and ours.mean() > 0.01


def test_kid_subsets_agree_with_cleanfid_in_mean() -> None:
    from cleanfid.fid import kernel_distance

    a, b = _clouds(200, 16, 0.4)
    ours = kid_subsets(a, b, num_subsets=200, subset_size=50, seed=1)
    np.random.seed(0)
    theirs = kernel_distance(
        a.astype(np.float64), b.astype(np.float64), num_subsets=200, max_subset_size=50
    )
    assert ours.mean() == pytest.approx(theirs, rel=0.1)
    assert ours.std() > 0


def test_kid_same_distribution_near_zero() -> None:
    a, b = _clouds(200, 16, 0.0)
    estimates = kid_subsets(a, b, num_subsets=50, subset_size=100)
    assert abs(estimates.mean()) < 3 * estimates.std() / np.sqrt(50) + 1e-3


@pytest.mark.parametrize("chunk_size", [7, 1024])
def test_prdc_matches_prdc_package(chunk_size: int) -> None:
    from prdc import compute_prdc

    rng = np.random.default_rng(3)
    real = rng.normal(size=(600, 24))
    fake = rng.normal(size=(500, 24)) * 1.2 + 0.3
    ours = prdc(real, fake, chunk_size=chunk_size, dtype="float64")
    p_r = compute_prdc(real, fake, nearest_k=3)
    d_c = compute_prdc(real, fake, nearest_k=5)
    # float64 distances: identical decisions except on exact float ties (none here).
    assert ours["precision"] == pytest.approx(p_r["precision"], abs=1e-12)
    assert ours["recall"] == pytest.approx(p_r["recall"], abs=1e-12)
    assert ours["density"] == pytest.approx(d_c["density"], abs=1e-12)
    assert ours["coverage"] == pytest.approx(d_c["coverage"], abs=1e-12)
    # float32 may flip a borderline point or two: 2 points of 500.
    fast = prdc(real, fake, chunk_size=chunk_size)
    for key in ("precision", "recall", "coverage"):
        assert fast[key] == pytest.approx(ours[key], abs=2 / 500)


def test_prdc_gaussian_clouds_with_known_overlap() -> None:
    rng = np.random.default_rng(0)
    real = rng.normal(size=(2000, 2))
    same = prdc(real, rng.normal(size=(2000, 2)))
    assert same["precision"] > 0.9 and same["recall"] > 0.9 and same["coverage"] > 0.9
    assert same["density"] == pytest.approx(1.0, abs=0.1)
    # Fakes from the half x0 > 0 of the same Gaussian: all plausible, half the mass covered.
    fake = rng.normal(size=(6000, 2))
    partial = prdc(real, fake[fake[:, 0] > 0][:2000])
    assert partial["precision"] > 0.9
    assert 0.4 < partial["recall"] < 0.6 and 0.4 < partial["coverage"] < 0.6
    far = prdc(real, rng.normal(size=(1000, 2)) + 10)
    assert far["precision"] == 0 and far["recall"] == 0 and far["coverage"] == 0


def test_prdc_inclusive_differs_only_on_ties() -> None:
    rng = np.random.default_rng(0)
    real = rng.normal(size=(50, 4))
    fake = real.copy()  # every fake sits exactly on a real point
    strict, inclusive = (
        prdc(real, fake, dtype="float64"),
        prdc(real, fake, dtype="float64", inclusive=True),
    )
    assert inclusive["precision"] == 1.0
    assert strict["precision"] == 1.0  # a point is strictly inside its own positive-radius ball
    assert inclusive["density"] >= strict["density"]


def test_prdc_needs_k_plus_one_points() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="k\\+1 = 6 fake"):
        prdc(rng.normal(size=(50, 4)), rng.normal(size=(5, 4)))
