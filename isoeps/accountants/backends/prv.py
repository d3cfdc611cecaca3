"""The ``prv`` backend: Microsoft's prv-accountant (Gopi et al. 2021). The PRIMARY accountant.

Reports the upper bound of PRV's interval. Unless ``eps_error`` is given, it keeps the error
at 1% of epsilon: one pass at ``eps_error=0.01`` (1% of any epsilon >= 1) and, when the lower
bound is below 1, a second pass at 1% of that lower bound (floor :data:`MIN_EPS_ERROR`).

The library's algorithm is run step for step, with one change: the mean of the truncated
privacy loss is computed exactly (:func:`_truncated_mean`), since the library's own estimate
fails at small sigma. Whatever the library still cannot compute raises
:class:`~isoeps.accountants.base.AccountantFailure`, naming the mechanisms.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import ClassVar

from isoeps.accountants.base import Accountant, AccountantFailure
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
    """Refuse a replace-one ledger: this backend accounts add/remove adjacency only.

    Args:
        ledger: the ledger to account.
        backend: the refusing accountant's name, for the message.

    Raises:
        AccountingInputError: the ledger's adjacency is ``replace_one``.
    """
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
            with np.errstate(over="ignore"):  # far right of a wide domain: z = inf, mass 0
                z = np.log1p(np.expm1(np.where(inside, t, 0.0)) / q)
            upper = 0.5 * q * erfc((2 * sigma**2 * z - 1) / (2 * root2 * sigma))
            lower = 0.5 * (1 - q) * erfc((2 * sigma**2 * z + 1) / (2 * root2 * sigma))
            return np.where(inside, upper + lower, 1.0)

        def cdf(self, t):
            return 1.0 - self._survival(t)

        def probability(self, a, b):
            return self._survival(a) - self._survival(b)

    return _Float64(sampling_probability=q, noise_multiplier=sigma)


def _truncated_mean(q: float, sigma: float, t_min: float, t_max: float) -> float:
    """E[Y | t_min <= Y <= t_max] for the privacy loss Y of a (subsampled) Gaussian.

    prv-accountant integrates the cdf of Y with ``quad``, which misses the mean by up to
    ~1e-2 at small sigma (e.g. 0.3 vs 0.2967 at q = 0.1, sigma = 0.3), and then rejects the
    mesh ("Discrete mean differs from continuous mean significantly"). Here the mean is an
    integral over the Gaussian output x instead, where the loss
    ``Y(x) = log(1 - q + q exp((2x - 1) / (2 sigma^2)))`` is smooth and increasing, under
    ``P = q N(1, sigma^2) + (1 - q) N(0, sigma^2)`` (q = 1: the plain Gaussian).
    """
    import numpy as np
    from scipy import integrate
    from scipy.special import ndtr

    log_rest = math.log1p(-q) if q < 1 else -math.inf
    log_q = math.log(q)
    s2 = sigma * sigma

    def x_of(t: float) -> float:  # the output x whose loss is t (-inf below the support)
        if t <= log_rest:
            return -math.inf
        if q >= 1:
            return s2 * t + 0.5
        if t > 30:  # e^t - (1 - q) = e^t (1 - (1 - q) e^-t)
            z = t + math.log1p(-(1 - q) * math.exp(-t)) - log_q
        else:
            z = math.log(math.expm1(t) + q) - log_q
        return s2 * z + 0.5

    x_lo, x_hi = x_of(t_min), x_of(t_max)
    knee = s2 * (log_rest - log_q) + 0.5 if q < 1 else 0.5
    total = mass = 0.0
    for weight, mu in ((q, 1.0), (1.0 - q, 0.0)) if q < 1 else ((1.0, 1.0),):
        a = max((x_lo - mu) / sigma, -40.0)
        b = min((x_hi - mu) / sigma, 40.0)
        if not a < b:
            continue

        def integrand(s: float, mu: float = mu) -> float:
            u = (2 * (mu + sigma * s) - 1) / (2 * s2)
            return float(np.logaddexp(log_rest, log_q + u)) * math.exp(-0.5 * s * s)

        points = sorted({p for p in (0.0, (knee - mu) / sigma) if a < p < b})
        value, _ = integrate.quad(
            integrand, a, b, points=points or None, limit=500, epsabs=1e-13, epsrel=1e-12
        )
        total += weight * value / math.sqrt(2 * math.pi)
        mass += weight * float(ndtr(b) - ndtr(a))
    return total / mass


def _truncated(prv, q: float, sigma: float, t_min: float, t_max: float):
    """prv-accountant's truncation of ``prv`` to the domain, with :func:`_truncated_mean`."""
    from prv_accountant.privacy_random_variables import PrivacyRandomVariableTruncated

    class _Truncated(PrivacyRandomVariableTruncated):
        def mean(self) -> float:
            return _truncated_mean(q, sigma, self.t_min, self.t_max)

    return _Truncated(prv, t_min, t_max)


def _library_epsilon(
    counts: Counter[tuple[float, float]], *, delta: float, eps_error: float, delta_error: float
) -> tuple[float, float, float]:
    """prv-accountant's ``PRVAccountant(...).compute_epsilon``, step for step (domain from
    ``compute_safe_domain_size``, mesh from Theorem 5.5, cell-centred discretisation,
    heterogeneous composition), except for the truncated mean (:func:`_truncated_mean`)."""
    import numpy as np
    from prv_accountant import GaussianMechanism, composers, discretisers
    from prv_accountant.accountant import compute_safe_domain_size
    from prv_accountant.domain import Domain

    parts = list(counts)
    prvs = [
        GaussianMechanism(noise_multiplier=sigma) if q >= 1 else _subsampled_gaussian(q, sigma)
        for sigma, q in parts
    ]
    steps = list(counts.values())
    size = compute_safe_domain_size(prvs, steps, eps_error=eps_error, delta_error=delta_error)
    mesh = eps_error / np.sqrt(sum(steps) / 2 * np.log(12 / delta_error))
    domain = Domain.create_aligned(-size, size, mesh)
    dprvs = [
        discretisers.CellCentred().discretise(
            _truncated(prv, min(q, 1.0), sigma, domain.t_min(), domain.t_max()), domain
        )
        for prv, (sigma, q) in zip(prvs, parts)
    ]
    composed = composers.Heterogeneous(dprvs).compute_composition(num_self_compositions=steps)
    return composed.compute_epsilon(delta, delta_error, eps_error)


class PRVAccountant(Accountant):
    """prv-accountant with heterogeneous composition; ``epsilon`` returns the upper bound."""

    name: ClassVar[str] = "prv"

    def __init__(self, *, eps_error: float | None = None, delta_error_ratio: float = 1e-3) -> None:
        if eps_error is not None and not eps_error > 0:
            raise AccountingInputError(f"eps_error must be > 0, got {eps_error!r}")
        self.eps_error = eps_error
        self.delta_error_ratio = delta_error_ratio

    def bounds(self, ledger: Ledger, *, delta: float, eps_error: float) -> tuple[float, ...]:
        """(lower, estimate, upper) of epsilon at ``delta`` with the given ``eps_error``.

        Args:
            ledger: the mechanisms to compose (add/remove adjacency).
            delta: the target delta.
            eps_error: the PRV accountant's allowed error in epsilon.

        Returns:
            Three floats; all ``inf`` for a ledger with a ``NonPrivate`` entry, all 0.0 for one
            with no Gaussian steps.

        Raises:
            AccountingInputError: the ledger's adjacency is ``replace_one``.
            AccountantFailure: the PRV library failed on this composition.
        """
        check_add_remove(ledger, self.name)
        if not ledger.is_private:
            return (float("inf"),) * 3
        counts = composition(ledger)
        if not counts:
            return (0.0,) * 3
        try:
            values = _library_epsilon(
                counts, delta=delta, eps_error=eps_error, delta_error=delta * self.delta_error_ratio
            )
        except (RuntimeError, ValueError, ArithmeticError, MemoryError) as error:
            parts = ", ".join(
                f"{steps} x (noise_multiplier={sigma:g}, sample_rate={q:g})"
                for (sigma, q), steps in counts.items()
            )
            raise AccountantFailure(
                f"prv-accountant cannot account {parts} at delta={delta:g} "
                f"(eps_error={eps_error:g}): {error}"
            ) from error
        return tuple(float(v) for v in values)

    def predict(self, ledger: Ledger, *, delta: float, coarse_factor: float = 10.0) -> float:
        """A cheap forecast of :meth:`epsilon` (``eps_error`` must be set): one PRV pass at a
        ``coarse_factor`` times larger eps_error, shifted to the finer bound.

        PRV's estimate barely moves with the mesh (about 1e-3 relative at 10x), so this lands
        within a fraction of the 1% calibration window at about 1/``coarse_factor`` the cost.

        Args:
            ledger: the mechanisms to compose (add/remove adjacency).
            delta: the target delta.
            coarse_factor: how much larger the forecast's eps_error is than this instance's.

        Returns:
            The forecast upper bound of epsilon.

        Raises:
            AccountingInputError: this instance has no fixed ``eps_error``.
        """
        if self.eps_error is None:
            raise AccountingInputError("predict() needs a fixed eps_error")
        coarse = self.eps_error * coarse_factor
        upper = self.bounds(ledger, delta=delta, eps_error=coarse)[2]
        return upper - coarse + self.eps_error if math.isfinite(upper) and upper > 0 else upper

    def epsilon(self, ledger: Ledger, *, delta: float) -> float:
        """The upper bound of epsilon at ``delta`` from the PRV accountant.

        With a fixed ``eps_error`` one pass; otherwise a first pass at the base eps_error, then,
        when the lower bound is below 1, a second at the eps_error that lower bound calls for.

        Args:
            ledger: the mechanisms to compose (add/remove adjacency).
            delta: the target delta.

        Returns:
            Epsilon (the upper bound).

        Raises:
            AccountingInputError: the ledger's adjacency is ``replace_one``.
            AccountantFailure: the PRV library failed on this composition.
        """
        if self.eps_error is not None:
            return self.bounds(ledger, delta=delta, eps_error=self.eps_error)[2]
        lower, _, upper = self.bounds(ledger, delta=delta, eps_error=BASE_EPS_ERROR)
        if lower >= 1 or upper == 0 or upper == float("inf"):
            return upper
        return self.bounds(ledger, delta=delta, eps_error=eps_error_for(lower))[2]
