"""Replace-one adjacency: the noise-multiplier convention against dp-accounting and the
analytic Gaussian mechanism, and calibration with ``adjacency="replace_one"`` (pld only)."""

from __future__ import annotations

import math

import pytest
from scipy.optimize import brentq
from scipy.stats import norm

from isoeps.accountants import (
    AccountingInputError,
    Gaussian,
    Ledger,
    SubsampledGaussian,
    calibrate,
    epsilon,
)
from isoeps.accountants.base import create_accountant
from isoeps.accountants.calibration import calibrate_detailed

DELTA = 1e-5


def analytic_gaussian_epsilon(*, sensitivity: float, std: float, delta: float) -> float:
    """Exact epsilon of the Gaussian mechanism (Balle and Wang 2018, Theorem 8)."""
    mu = sensitivity / std

    def excess(eps: float) -> float:
        return norm.cdf(-eps / mu + mu / 2) - math.exp(eps) * norm.cdf(-eps / mu - mu / 2) - delta

    return float(brentq(excess, 0.0, 500.0, xtol=1e-12))


@pytest.mark.parametrize("sigma", [1.0, 2.0, 5.0])
def test_replace_one_noise_multiplier_is_std_over_the_contribution_bound(sigma: float) -> None:
    # A replace-one Gaussian with noise_multiplier s is the Gaussian mechanism with std s and
    # sensitivity 2 (the two neighbours' means are -1 and +1): s is std / C, not std / 2C.
    replace = epsilon(Ledger([Gaussian(sigma, adjacency="replace_one")]), DELTA, "pld")
    assert replace == pytest.approx(
        analytic_gaussian_epsilon(sensitivity=2.0, std=sigma, delta=DELTA), rel=1e-3
    )
    # ... which is add/remove at half the noise multiplier, and far above add/remove at s.
    half = epsilon(Ledger([Gaussian(sigma / 2)]), DELTA, "pld")
    assert replace == pytest.approx(half, rel=1e-6)
    same = analytic_gaussian_epsilon(sensitivity=1.0, std=sigma, delta=DELTA)
    assert replace > 1.9 * same


def test_subsampled_replace_one_sits_between_the_add_remove_bounds() -> None:
    # One subsampled replace step costs at least the add/remove step at the same sigma (a
    # replacement can be a removal then an addition) and at most the unsampled replace step.
    sigma, q = 1.0, 0.1
    replace = epsilon(
        Ledger([SubsampledGaussian(sigma, q, 1, adjacency="replace_one")]), DELTA, "pld"
    )
    add_remove = epsilon(Ledger([SubsampledGaussian(sigma, q, 1)]), DELTA, "pld")
    unsampled = epsilon(Ledger([Gaussian(sigma, adjacency="replace_one")]), DELTA, "pld")
    assert add_remove <= replace < unsampled


@pytest.mark.parametrize("target", [1.0, 10.0])
@pytest.mark.parametrize("q", [1.0, 0.2, 0.01])
def test_calibrate_replace_one_lands_in_the_window(target: float, q: float) -> None:
    result = calibrate_detailed(target, DELTA, q, 1, "pld", adjacency="replace_one")
    assert target * 0.99 <= result.epsilon <= target
    mechanism = (
        Gaussian(result.noise_multiplier, adjacency="replace_one")
        if q == 1
        else SubsampledGaussian(result.noise_multiplier, q, 1, adjacency="replace_one")
    )
    assert epsilon(Ledger([mechanism]), DELTA, "pld") <= target
    # Calibrating under add/remove would understate the noise replace-one needs.
    add_remove = calibrate(target, DELTA, q, 1, "pld")
    assert result.noise_multiplier >= add_remove
    if q == 1:
        assert result.noise_multiplier == pytest.approx(2 * add_remove, rel=0.02)


def test_calibrate_default_adjacency_is_unchanged() -> None:
    assert calibrate(1.0, DELTA, 0.05, 10, "pld") == calibrate(
        1.0, DELTA, 0.05, 10, "pld", adjacency="add_remove"
    )


@pytest.mark.parametrize("accountant", ["prv", "rdp"])
def test_calibrate_replace_one_needs_pld(accountant: str) -> None:
    with pytest.raises(AccountingInputError, match=f"'{accountant}'.*use accountant 'pld'"):
        calibrate(1.0, DELTA, 0.1, 1, accountant, adjacency="replace_one")
    with pytest.raises(AccountingInputError, match="use accountant 'pld'"):
        calibrate(1.0, DELTA, 0.1, 1, create_accountant(accountant), adjacency="replace_one")


def test_calibrate_unknown_adjacency_is_named() -> None:
    with pytest.raises(AccountingInputError, match="adjacency.*'sideways'"):
        calibrate(1.0, DELTA, 0.1, 1, "pld", adjacency="sideways")
