"""The ``prv`` backend: Microsoft's prv-accountant (Gopi et al. 2021). The PRIMARY accountant.

Reports the upper bound of PRV's interval. Unless ``eps_error`` is given, it keeps the error
at 1% of epsilon: one pass at ``eps_error=0.01`` (1% of any epsilon >= 1) and, when the lower
bound is below 1, a second pass at 1% of that lower bound (floor :data:`MIN_EPS_ERROR`).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import ClassVar

from isoeps.accountants.base import Accountant
from isoeps.accountants.ledger import Ledger
from isoeps.accountants.mechanisms import (
    AccountingInputError,
    Gaussian,
    NonPrivate,
    SubsampledGaussian,
)

#: The absolute eps_error of the first pass (1% of epsilon = 1).
BASE_EPS_ERROR = 0.01
#: The smallest eps_error ever used: below it PRV's mesh gets too large to compute.
MIN_EPS_ERROR = 1e-4


def eps_error_for(epsilon: float) -> float:
    """The eps_error this backend uses for an epsilon of about ``epsilon`` (1%, clamped)."""
    return max(min(BASE_EPS_ERROR, 0.01 * epsilon), MIN_EPS_ERROR)


def check_add_remove(ledger: Ledger, backend: str) -> None:
    if ledger.adjacency == "replace_one":
        raise AccountingInputError(
            f"accountant {backend!r} cannot account replace_one adjacency; use accountant 'pld'"
        )


def composition(ledger: Ledger) -> Counter[tuple[float, float]]:
    """Steps per distinct (noise_multiplier, sample_rate), so equal mechanisms self-compose."""
    counts: Counter[tuple[float, float]] = Counter()
    for m in ledger:
        if isinstance(m, SubsampledGaussian):
            counts[(float(m.noise_multiplier), float(m.sample_rate))] += m.steps
        elif isinstance(m, Gaussian):
            counts[(float(m.noise_multiplier), 1.0)] += m.count
        elif not isinstance(m, NonPrivate):
            raise AccountingInputError(f"unsupported mechanism {type(m).__name__}")
    return counts


def _subsampled_gaussian(sample_rate: float, noise_multiplier: float):
    """prv-accountant's ``PoissonSubsampledGaussianMechanism`` with a float64 cdf.

    The library evaluates the cdf in long double, which is most of the cost of an epsilon
    (about 70%). Here the same formula (Gopi et al. 2021, prop. B4) is written with
    ``log1p``/``expm1`` and the interval mass as a difference of survival functions, which is
    as accurate in float64; the tests check it against the library's own class.
    """
    import numpy as np
    from prv_accountant import PoissonSubsampledGaussianMechanism
    from scipy.special import erfc

    q, sigma = float(sample_rate), float(noise_multiplier)
    root2 = math.sqrt(2.0)

    class _Float64(PoissonSubsampledGaussianMechanism):
        def _survival(self, t):
            t = np.asarray(t, dtype=np.float64)
            inside = t > math.log1p(-q)
            z = np.log1p(np.expm1(np.where(inside, t, 0.0)) / q)
            upper = 0.5 * q * erfc((2 * sigma**2 * z - 1) / (2 * root2 * sigma))
            lower = 0.5 * (1 - q) * erfc((2 * sigma**2 * z + 1) / (2 * root2 * sigma))
            return np.where(inside, upper + lower, 1.0)

        def cdf(self, t):
            return 1.0 - self._survival(t)

        def probability(self, a, b):
            return self._survival(a) - self._survival(b)

    return _Float64(sampling_probability=q, noise_multiplier=sigma)


class PRVAccountant(Accountant):
    """prv-accountant with heterogeneous composition; ``epsilon`` returns the upper bound."""

    name: ClassVar[str] = "prv"

    def __init__(self, *, eps_error: float | None = None, delta_error_ratio: float = 1e-3) -> None:
        if eps_error is not None and not eps_error > 0:
            raise AccountingInputError(f"eps_error must be > 0, got {eps_error!r}")
        self.eps_error = eps_error
        self.delta_error_ratio = delta_error_ratio

    def bounds(self, ledger: Ledger, *, delta: float, eps_error: float) -> tuple[float, ...]:
        """(lower, estimate, upper) of epsilon at ``delta`` with the given ``eps_error``."""
        from prv_accountant import GaussianMechanism
        from prv_accountant import PRVAccountant as _Library

        check_add_remove(ledger, self.name)
        if not ledger.is_private:
            return (float("inf"),) * 3
        counts = composition(ledger)
        if not counts:
            return (0.0,) * 3
        prvs = [
            GaussianMechanism(noise_multiplier=sigma) if q >= 1 else _subsampled_gaussian(q, sigma)
            for sigma, q in counts
        ]
        steps = list(counts.values())
        library = _Library(
            prvs=prvs,
            max_self_compositions=steps,
            eps_error=eps_error,
            delta_error=delta * self.delta_error_ratio,
        )
        return tuple(float(v) for v in library.compute_epsilon(delta, steps))

    def predict(self, ledger: Ledger, *, delta: float, coarse_factor: float = 10.0) -> float:
        """A cheap forecast of :meth:`epsilon` (``eps_error`` must be set): one PRV pass at a
        ``coarse_factor`` times larger eps_error, shifted to the finer bound.

        PRV's estimate barely moves with the mesh (about 1e-3 relative at 10x), so this lands
        within a fraction of the 1% calibration window at about 1/``coarse_factor`` the cost.
        """
        if self.eps_error is None:
            raise AccountingInputError("predict() needs a fixed eps_error")
        coarse = self.eps_error * coarse_factor
        upper = self.bounds(ledger, delta=delta, eps_error=coarse)[2]
        return upper - coarse + self.eps_error if math.isfinite(upper) and upper > 0 else upper

    def epsilon(self, ledger: Ledger, *, delta: float) -> float:
        if self.eps_error is not None:
            return self.bounds(ledger, delta=delta, eps_error=self.eps_error)[2]
        lower, _, upper = self.bounds(ledger, delta=delta, eps_error=BASE_EPS_ERROR)
        if lower >= 1 or upper == 0 or upper == float("inf"):
            return upper
        return self.bounds(ledger, delta=delta, eps_error=eps_error_for(lower))[2]
