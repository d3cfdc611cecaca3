"""Gaussian-DP (CLT) approximation: a cheap, closed-form epsilon used to seed calibration.

It is not an accountant (the CLT is optimistic for small q*T); it only picks where the
bracketing search for sigma starts, so that few expensive PRV evaluations are needed.
"""

from __future__ import annotations

import math


def mu_of(noise_multiplier: float, sample_rate: float, steps: int) -> float:
    """The GDP mu of ``steps`` Poisson-subsampled Gaussian steps (Bu et al. 2020, CLT).

    Args:
        noise_multiplier: sigma of each step.
        sample_rate: q; at 1 the steps are plain Gaussians.
        steps: T.

    Returns:
        mu.
    """
    if sample_rate >= 1:
        return math.sqrt(steps) / noise_multiplier
    inv = min(1.0 / noise_multiplier**2, 700.0)
    return sample_rate * math.sqrt(steps * math.expm1(inv))


def sigma_for_mu(mu: float, sample_rate: float, steps: int) -> float:
    """Inverse of :func:`mu_of` in sigma.

    Args:
        mu: the target GDP mu.
        sample_rate: q; at 1 the steps are plain Gaussians.
        steps: T.

    Returns:
        The sigma whose :func:`mu_of` is ``mu``.
    """
    if sample_rate >= 1:
        return math.sqrt(steps) / mu
    return 1.0 / math.sqrt(math.log1p(mu**2 / (sample_rate**2 * steps)))


def delta_of(mu: float, epsilon: float) -> float:
    """delta(epsilon) of mu-GDP (Dong, Roth and Su 2019).

    Args:
        mu: the GDP parameter; > 0.
        epsilon: the epsilon at which delta is read.

    Returns:
        delta.
    """
    from scipy.special import ndtr

    return float(ndtr(-epsilon / mu + mu / 2) - math.exp(epsilon) * ndtr(-epsilon / mu - mu / 2))


def mu_for(epsilon: float, delta: float) -> float:
    """The mu whose GDP curve gives (epsilon, delta).

    Args:
        epsilon: the epsilon.
        delta: the delta at that epsilon.

    Returns:
        mu, found by root search.
    """
    from scipy.optimize import brentq

    lo, hi = 1e-6, 1.0
    while delta_of(hi, epsilon) < delta and hi < 1e4:
        hi *= 2
    return float(brentq(lambda m: delta_of(m, epsilon) - delta, lo, hi, xtol=1e-10))


def epsilon_for(mu: float, delta: float) -> float:
    """The epsilon at which mu-GDP has the given delta.

    Args:
        mu: the GDP parameter; > 0.
        delta: the target delta.

    Returns:
        epsilon, found by root search.
    """
    from scipy.optimize import brentq

    hi = 1.0
    while delta_of(mu, hi) > delta and hi < 1e4:
        hi *= 2
    return float(brentq(lambda e: delta_of(mu, e) - delta, 0.0, hi, xtol=1e-10))
