"""Calibration: achieved epsilon in [target (1 - rtol), target], errors, prefixes."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from isoeps.accountants import (
    Accountant,
    AccountingInputError,
    CalibrationError,
    Gaussian,
    Ledger,
    NonPrivate,
    SubsampledGaussian,
    calibrate,
    epsilon,
)
from isoeps.accountants.calibration import calibrate_detailed


def _ledger(sigma: float, q: float, steps: int) -> Ledger:
    if q == 1:
        return Ledger([Gaussian(noise_multiplier=sigma, count=steps)])
    return Ledger([SubsampledGaussian(noise_multiplier=sigma, sample_rate=q, steps=steps)])


@pytest.mark.parametrize("accountant", ["prv", "pld", "rdp"])
@pytest.mark.parametrize("target,q,steps", [(1.0, 0.02, 500), (8.0, 0.05, 100), (2.0, 1.0, 1)])
def test_calibrate_window_and_minimality(accountant, target, q, steps):
    result = calibrate_detailed(target, 1e-5, q, steps, accountant)
    sigma = result.noise_multiplier
    assert target * 0.99 <= result.epsilon <= target
    # The public epsilon (default settings) agrees: the matched-epsilon guarantee holds.
    assert epsilon(_ledger(sigma, q, steps), 1e-5, accountant) <= target
    # A 2% smaller sigma overshoots: the returned sigma is (near) the smallest.
    assert epsilon(_ledger(sigma * 0.98, q, steps), 1e-5, accountant) > target


def test_prv_calibration_uses_few_evaluations():
    result = calibrate_detailed(3.0, 1e-5, 0.01, 2000, "prv")
    assert result.evaluations <= 8
    # The returned sigma was evaluated at the full eps_error (not only forecast).
    assert (result.noise_multiplier, result.epsilon) in result.trace


def test_matches_opacus_rdp_calibration():
    from opacus.accountants.utils import get_noise_multiplier

    ours = calibrate(5.0, 1e-5, 0.01, 1000, "rdp", rtol=1e-3)
    theirs = get_noise_multiplier(
        target_epsilon=5.0, target_delta=1e-5, sample_rate=0.01, steps=1000, accountant="rdp"
    )
    assert ours == pytest.approx(theirs, rel=5e-3)


def _flaky_rdp(monkeypatch, below: float):
    """Make the rdp backend fail (as PRV's 'Discrete mean differs...') for sigma < ``below``."""
    from isoeps.accountants.backends.rdp import RDPAccountant

    original = RDPAccountant.epsilon

    def flaky(self, ledger, *, delta):
        if ledger.entries[-1].noise_multiplier < below:
            raise RuntimeError("Discrete mean differs from continuous mean significantly.")
        return original(self, ledger, delta=delta)

    monkeypatch.setattr(RDPAccountant, "epsilon", flaky)


def test_accountant_failure_is_not_read_as_above_target(monkeypatch):
    """Issue 13 item 4: a failure where the answer lies must not yield a larger sigma whose
    epsilon is far below the target (before: sigma 1.0, epsilon well under 20, no error)."""
    free = calibrate(20.0, 1e-5, 0.05, 100, "rdp")
    assert free < 1.0  # the answer lies in the region made to fail
    _flaky_rdp(monkeypatch, below=1.0)
    with pytest.raises(CalibrationError, match=r"rdp.*failed at noise_multiplier.*Discrete mean"):
        calibrate(20.0, 1e-5, 0.05, 100, "rdp")


def test_accountant_failure_away_from_the_answer_still_lands(monkeypatch):
    free = calibrate(20.0, 1e-5, 0.05, 100, "rdp")
    _flaky_rdp(monkeypatch, below=0.5 * free)
    result = calibrate_detailed(20.0, 1e-5, 0.05, 100, "rdp")
    assert 20.0 * 0.99 <= result.epsilon <= 20.0 and result.accountant == "rdp"


@pytest.mark.parametrize("target", [20.0, 30.0, 50.0])
def test_issue13_large_targets_land_in_window(target):
    """Issue 13 item 4: at q = 0.1, T = 10 PRV failed below sigma ~0.57 and calibration
    returned epsilon 9.27-9.72 for targets 20, 30 and 50. It must land in the window."""
    result = calibrate_detailed(target, 1e-5, 0.1, 10, "prv")
    assert target * 0.99 <= result.epsilon <= target
    assert result.accountant == "prv"
    assert (result.noise_multiplier, result.epsilon) in result.trace
    pld = epsilon(_ledger(result.noise_multiplier, 0.1, 10), 1e-5, "pld")
    assert pld == pytest.approx(result.epsilon, rel=0.01)


class _StepAccountant(Accountant):
    """A fake backend whose epsilon jumps from ``high`` to ``low`` at sigma = 1."""

    name = "step"

    def __init__(self, high: float, low: float) -> None:
        self.high, self.low = high, low

    def epsilon(self, ledger, *, delta):
        return self.high if ledger.entries[-1].noise_multiplier < 1.0 else self.low


@pytest.mark.parametrize("high,low", [(10.0, 2.0), (4.0, 3.0)])
def test_never_returns_below_the_window(high, low):
    """No sigma lands in [4.95, 5]: an error naming the accountant, not a cheaper sigma."""
    with pytest.raises(CalibrationError, match="cannot be reached within rtol=0.01.*'step'"):
        calibrate(5.0, 1e-5, 0.1, 10, _StepAccountant(high, low))


def test_prefix_is_composed_in():
    prefix = Ledger([Gaussian(noise_multiplier=4.0, count=1)])
    alone = calibrate(2.0, 1e-5, 0.02, 300, "pld")
    with_prefix = calibrate(2.0, 1e-5, 0.02, 300, "pld", prefix=prefix)
    assert with_prefix > alone
    total = Ledger([*prefix, SubsampledGaussian(with_prefix, 0.02, 300)])
    assert 2.0 * 0.99 <= epsilon(total, 1e-5, "pld") <= 2.0


def test_prefix_non_private_unreachable():
    with pytest.raises(CalibrationError, match="non-private"):
        calibrate(1.0, 1e-5, 0.01, 10, "rdp", prefix=Ledger([NonPrivate()]))


def test_unreachable_target_says_so():
    with pytest.raises(CalibrationError, match="unreachable.*max_noise_multiplier=3"):
        calibrate(0.01, 1e-5, 0.5, 1000, "rdp", max_noise_multiplier=3.0)


def test_prefix_alone_over_target_is_unreachable():
    prefix = Ledger([Gaussian(noise_multiplier=0.5, count=1)])
    with pytest.raises(CalibrationError, match="unreachable"):
        calibrate(1.0, 1e-5, 0.01, 100, "pld", prefix=prefix, max_noise_multiplier=50.0)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"target_epsilon": 0.0}, "epsilon.*0.0"),
        ({"target_epsilon": -1.0}, "epsilon.*-1.0"),
        ({"target_epsilon": float("nan")}, "epsilon.*nan"),
        ({"target_epsilon": float("inf")}, "epsilon.*inf"),
        ({"delta": 0.0}, "delta.*0.0"),
        ({"delta": 1.0}, "delta.*1.0"),
        ({"sample_rate": 0.0}, "sample_rate.*0.0"),
        ({"sample_rate": 1.5}, "sample_rate.*1.5"),
        ({"steps": 0}, "steps.*0"),
        ({"steps": 2.5}, "steps.*2.5"),
        ({"max_noise_multiplier": -1.0}, "max_noise_multiplier.*-1.0"),
        ({"rtol": 0.0}, "rtol.*0.0"),
    ],
)
def test_bad_inputs_named(kwargs, match):
    args = {"target_epsilon": 1.0, "delta": 1e-5, "sample_rate": 0.01, "steps": 100, **kwargs}
    with pytest.raises(AccountingInputError, match=match) as info:
        calibrate(accountant="rdp", **args)
    assert "\n" not in str(info.value)


def test_unknown_accountant_in_calibrate():
    with pytest.raises(ValueError, match="'nope'"):
        calibrate(1.0, 1e-5, 0.01, 100, "nope")


@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    target=st.floats(0.1, 50.0),
    q=st.sampled_from([0.001, 0.01, 0.05, 0.2, 1.0]),
    steps=st.integers(1, 2000),
    delta=st.sampled_from([1e-6, 1e-5, 1e-4]),
)
def test_calibrate_property_prv(target, q, steps, delta):
    rtol = 0.01
    result = calibrate_detailed(target, delta, q, steps, "prv", rtol=rtol)
    assert result.epsilon <= target
    assert result.epsilon >= target * (1 - rtol)
    assert math.isfinite(result.noise_multiplier) and result.noise_multiplier > 0
    assert result.evaluations <= 8


@settings(max_examples=20, deadline=None, derandomize=True)
@given(
    target=st.floats(0.1, 50.0),
    q=st.sampled_from([0.001, 0.01, 0.1, 1.0]),
    steps=st.integers(1, 20000),
    delta=st.sampled_from([1e-6, 1e-5]),
)
def test_calibrate_property_rdp(target, q, steps, delta):
    try:
        result = calibrate_detailed(target, delta, q, steps, "rdp", max_noise_multiplier=100.0)
    except CalibrationError:
        # RDP over opacus's orders has a floor (log(1/delta) / 62): then no sigma reaches it.
        assert epsilon(_ledger(100.0, q, steps), delta, "rdp") > target
        return
    assert target * 0.99 <= result.epsilon <= target
