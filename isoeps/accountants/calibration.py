"""Epsilon of a ledger, and calibration of the noise multiplier to a target epsilon.

Calibration finds the smallest sigma whose epsilon is at most the target: it seeds a bracket
from the closed-form GDP approximation (:mod:`isoeps.accountants.gdp`), widens it by secant
steps in log-log space, then runs Brent's method (``scipy.optimize.brentq``) on
``log eps(sigma) - log aim`` with ``aim`` just under the target. It stops at the first sigma
whose epsilon lies in ``[target * (1 - rtol), target]``; it never returns a sigma above target,
and never one below that window: when no evaluated sigma lands in it, it raises
:class:`CalibrationError`. A backend failure (:class:`~isoeps.accountants.base.AccountantFailure`,
e.g. prv-accountant rejecting its discretisation) is not read as "above target": it steers the
search like one, but a calibration that cannot land says which sigmas failed and why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from isoeps.accountants.base import PRIMARY, Accountant, AccountantFailure, create_accountant
from isoeps.accountants.ledger import Ledger
from isoeps.accountants.mechanisms import (
    ADJACENCIES,
    AccountingInputError,
    Adjacency,
    Gaussian,
    Mechanism,
    SubsampledGaussian,
)

#: The default largest sigma calibration will return before calling a target unreachable.
MAX_NOISE_MULTIPLIER = 1e3
#: The smallest sigma calibration tries (smaller ones make the accountants' domains explode).
MIN_NOISE_MULTIPLIER = 1e-2
#: Where Brent aims, as a fraction of the tolerance window below the target.
_AIM_FRACTION = 0.25
#: ``log eps - log aim`` assigned to an infinite epsilon or, to steer the search only, to an
#: accountant failure (never taken as a result).
_FAILED = 20.0


class CalibrationError(ValueError):
    """No noise multiplier's epsilon lands in ``[target * (1 - rtol), target]``: the target is
    unreachable within the allowed noise multipliers, or the accountant failed where it lands.
    The message names the target, delta, sample rate, steps and the accountant."""


def _check_number(name: str, value: object, *, low: float, high: float, closed_high: bool) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)
    if ok:
        ok = low < value < high or (closed_high and value == high)
    if not ok:
        bracket = "]" if closed_high else ")"
        raise AccountingInputError(f"{name} must be in ({low:g}, {high:g}{bracket}, got {value!r}")
    return float(value)


def check_delta(delta: object) -> float:
    """Return ``delta`` as a float, or raise naming it when it is not in (0, 1)."""
    return _check_number("delta", delta, low=0.0, high=1.0, closed_high=False)


def check_epsilon(target: object) -> float:
    """Return a finite target epsilon > 0, or raise naming it."""
    return _check_number("epsilon", target, low=0.0, high=math.inf, closed_high=False)


def epsilon(
    ledger: Ledger, delta: float, accountant: str | Accountant = PRIMARY, **options: float
) -> float:
    """Epsilon of the composition of every entry of ``ledger`` at ``delta``.

    An empty ledger gives 0.0 and any ``NonPrivate`` entry gives ``inf``. ``accountant`` is a
    registered name (``prv``, ``pld``, ``rdp``) or an instance; ``options`` go to its
    constructor (e.g. ``eps_error`` for ``prv``).

    Args:
        ledger: the mechanisms to compose.
        delta: the target delta, in (0, 1).
        accountant: the accountant's registered name, or an instance.
        options: constructor options of a named accountant; ignored for an instance.

    Returns:
        Epsilon.

    Raises:
        AccountingInputError: ``delta`` is not in (0, 1), or ``ledger`` is not a ``Ledger``.
        UnknownAccountantError: ``accountant`` names no registered backend.
    """
    delta = check_delta(delta)
    if not isinstance(ledger, Ledger):
        raise AccountingInputError(f"ledger must be a Ledger, got {type(ledger).__name__}")
    backend = (
        create_accountant(accountant, **options) if isinstance(accountant, str) else accountant
    )
    if not ledger.is_private:
        return math.inf
    if ledger.is_empty:
        return 0.0
    return float(backend.epsilon(ledger, delta=delta))


@dataclass
class Calibration:
    """The result of :func:`calibrate_detailed`."""

    noise_multiplier: float
    #: The achieved epsilon, in ``[target_epsilon * (1 - rtol), target_epsilon]``.
    epsilon: float
    target_epsilon: float
    evaluations: int
    #: Every (sigma, epsilon) the search evaluated, in order; ``nan`` marks a failure.
    trace: list[tuple[float, float]] = field(default_factory=list)
    #: The accountant whose (upper-bound) epsilon this is, e.g. ``"prv"``.
    accountant: str = PRIMARY


class _Found(Exception):
    """Raised inside the root finder to stop at the first sigma in the tolerance window."""


def _mechanism(sigma: float, sample_rate: float, steps: int, adjacency: Adjacency) -> Mechanism:
    if sample_rate == 1:
        return Gaussian(noise_multiplier=sigma, count=steps, adjacency=adjacency)
    return SubsampledGaussian(
        noise_multiplier=sigma, sample_rate=sample_rate, steps=steps, adjacency=adjacency
    )


def _shift(adjacency: str) -> float:
    """How far apart the two neighbouring means are, in units of C: replace-one is 2C."""
    return 2.0 if adjacency == "replace_one" else 1.0


def _seed(
    target: float,
    delta: float,
    sample_rate: float,
    steps: int,
    prefix: Ledger,
    adjacency: Adjacency,
) -> float:
    from isoeps.accountants import gdp

    mu = gdp.mu_for(target, delta)
    spent = 0.0
    for m in prefix:
        if isinstance(m, SubsampledGaussian):
            sigma = m.noise_multiplier / _shift(m.adjacency)
            spent += gdp.mu_of(sigma, m.sample_rate, m.steps) ** 2
        elif isinstance(m, Gaussian):
            spent += gdp.mu_of(m.noise_multiplier / _shift(m.adjacency), 1.0, m.count) ** 2
    mu = math.sqrt(max(mu**2 - spent, (0.1 * mu) ** 2))
    # A seed only: the GDP model of replace-one is add/remove at half the noise multiplier.
    return _shift(adjacency) * gdp.sigma_for_mu(mu, sample_rate, steps)


def _check_adjacency(adjacency: object, accountant: str | Accountant) -> Adjacency:
    if adjacency not in ADJACENCIES:
        raise AccountingInputError(f"adjacency must be one of {ADJACENCIES}, got {adjacency!r}")
    if adjacency == "replace_one":
        if isinstance(accountant, str):
            name, supported = accountant, accountant == "pld"
        else:
            name, supported = accountant.name, accountant.supports_replace_one
        if not supported:
            raise AccountingInputError(
                f"accountant {name!r} cannot account replace_one adjacency; use accountant 'pld'"
            )
    return adjacency  # type: ignore[return-value]


def _backend_for(accountant: str | Accountant, target: float) -> Accountant:
    if not isinstance(accountant, str):
        return accountant
    if accountant == "prv":
        from isoeps.accountants.backends.prv import eps_error_for

        return create_accountant("prv", eps_error=eps_error_for(target))
    return create_accountant(accountant)


def _gdp_slope(sigma: float, delta: float, sample_rate: float, steps: int) -> float:
    """-d log eps / d log sigma of the GDP model at ``sigma``: the first secant slope."""
    from isoeps.accountants import gdp

    def log_eps(s: float) -> float:
        return math.log(gdp.epsilon_for(gdp.mu_of(s, sample_rate, steps), delta))

    try:
        slope = -(log_eps(sigma * 1.05) - log_eps(sigma)) / math.log(1.05)
    except (ValueError, ArithmeticError):
        return 1.0
    return min(max(slope, 0.2), 20.0) if math.isfinite(slope) else 1.0


class _Solver:
    """Finds sigma with ``floor <= f(sigma) <= target`` for a decreasing ``f``; caches ``f``."""

    def __init__(self, f, *, target: float, rtol: float, lo: float, hi: float) -> None:
        self.f, self.target, self.rtol, self.lo, self.hi = f, target, rtol, lo, hi
        self.floor = target * (1 - rtol)
        self.cache: dict[float, float] = {}

    def value(self, sigma: float) -> float:
        if sigma not in self.cache:
            self.cache[sigma] = self.f(sigma)
        return self.cache[sigma]

    def solve(self, seed: float, slope: float, scale: float = 1.0) -> float | None:
        """The first sigma in the window of ``scale * f``; None when none evaluated lands in it."""
        from scipy.optimize import brentq

        aim = self.target * (1 - _AIM_FRACTION * self.rtol)
        found: list[float] = []

        def g(log_sigma: float) -> float:
            sigma = math.exp(log_sigma)
            value = scale * self.value(sigma)
            if self.floor <= value <= self.target:
                found.append(sigma)
                raise _Found
            if math.isnan(value) or math.isinf(value):
                return _FAILED  # a failure only steers: it is never in the window
            if value <= 0:
                return -_FAILED
            return math.log(value) - math.log(aim)

        lo, hi = math.log(self.lo), math.log(self.hi)
        try:
            # Bracket by secant steps in (log sigma, log eps) space, then Brent inside it.
            a = min(max(math.log(seed), lo), hi)
            ga = g(a)
            b, gb = a, ga
            for _ in range(60):
                if (ga > 0) != (gb > 0):
                    break
                move = max(min(gb / slope, 3.0), -3.0)
                if abs(move) < 0.1 * self.rtol:
                    move = math.copysign(0.1 * self.rtol, move if move else 1.0)
                nxt = min(max(b + move, lo), hi)
                if nxt == b:
                    break  # at a bound of [lo, hi] and still on one side of the window
                gn = g(nxt)
                if gn < _FAILED and gb < _FAILED:
                    secant = -(gn - gb) / (nxt - b)
                    slope = min(max(secant, 0.2), 20.0) if secant > 0 else slope
                a, ga, b, gb = b, gb, nxt, gn
            if (ga > 0) != (gb > 0):
                brentq(g, min(a, b), max(a, b), xtol=self.rtol * 1e-3, rtol=1e-12, maxiter=100)
        except RuntimeError:  # brentq did not converge: fall back on what was evaluated
            pass
        except _Found:
            return found[-1]
        inside = [s for s, v in self.cache.items() if self.floor <= scale * v <= self.target]
        return min(inside) if inside else None


def calibrate_detailed(
    target_epsilon: float,
    delta: float,
    sample_rate: float,
    steps: int,
    accountant: str | Accountant = PRIMARY,
    *,
    max_noise_multiplier: float = MAX_NOISE_MULTIPLIER,
    rtol: float = 0.01,
    prefix: Ledger | None = None,
    adjacency: Adjacency = "add_remove",
) -> Calibration:
    """:func:`calibrate`, returning the achieved epsilon and the number of evaluations too.

    For ``prv`` the search runs on :meth:`PRVAccountant.predict` (a 10x coarser PRV pass) and
    only the candidates are evaluated at the full eps_error; their ratio to the forecast
    rescales the forecast until a candidate lands in the window.

    Args:
        target_epsilon: the epsilon to land in ``[target * (1 - rtol), target]``.
        delta: the delta of that epsilon.
        sample_rate: each step's Poisson sampling rate (1: a plain Gaussian).
        steps: the number of steps.
        accountant: a registered accountant's name, or an instance.
        max_noise_multiplier: the largest sigma calibration may return.
        rtol: the relative width of the window below the target.
        prefix: the mechanisms already spent (default: none).
        adjacency: ``add_remove``, or ``replace_one`` (pld only).

    Returns:
        The noise multiplier, its epsilon, the target, the evaluation count and trace, and
        the accountant's name.
    """
    target = check_epsilon(target_epsilon)
    delta = check_delta(delta)
    SubsampledGaussian(1.0, sample_rate, steps)  # validates sample_rate and steps, naming them
    max_sigma, rtol = _check_search(max_noise_multiplier, rtol)
    adjacency = _check_adjacency(adjacency, accountant)
    prefix = _check_prefix(prefix)
    backend = _backend_for(accountant, target)
    evaluations = _Evaluations(prefix, sample_rate, steps, adjacency, delta)
    exact = evaluations.exact(backend.epsilon)
    lo = min(MIN_NOISE_MULTIPLIER, max_sigma)
    seed = min(max(_seed(target, delta, sample_rate, steps, prefix, adjacency), lo), max_sigma)
    slope = _gdp_slope(seed / _shift(adjacency), delta, sample_rate, steps)
    solver = _Solver(exact, target=target, rtol=rtol, lo=lo, hi=max_sigma)
    predict = getattr(backend, "predict", None)
    if predict is not None and getattr(backend, "eps_error", None) is not None:
        cheap = _Solver(evaluations.guarded(predict), target=target, rtol=rtol, lo=lo, hi=max_sigma)
        seed = _forecast_seed(cheap, solver, seed, slope)
    sigma = solver.solve(seed, slope)
    if sigma is None:
        where = (backend.name, target, delta, sample_rate, steps, rtol, lo, max_sigma)
        raise _no_landing(solver, evaluations.failures, *where)
    value = solver.value(sigma)
    assert solver.floor <= value <= target  # the invariant; solve() returns only such sigmas
    return Calibration(
        sigma, value, target, evaluations.calls, evaluations.trace, accountant=backend.name
    )


def _check_search(max_noise_multiplier: object, rtol: object) -> tuple[float, float]:
    """The largest sigma (> 0) and the window's relative width (in (0, 0.5]), checked."""
    max_sigma = _check_number(
        "max_noise_multiplier", max_noise_multiplier, low=0.0, high=math.inf, closed_high=False
    )
    return max_sigma, _check_number("rtol", rtol, low=0.0, high=0.5, closed_high=True)


def _check_prefix(prefix: Ledger | None) -> Ledger:
    """The prefix ledger (empty when None); raise unless it is a private Ledger."""
    prefix = Ledger() if prefix is None else prefix
    if not isinstance(prefix, Ledger):
        raise AccountingInputError(f"prefix must be a Ledger, got {type(prefix).__name__}")
    if not prefix.is_private:
        raise CalibrationError("prefix ledger has a non-private entry: epsilon is inf")
    return prefix


class _Evaluations:
    """Epsilon of ``prefix`` plus the calibrated mechanism at a sigma, by a backend method;
    counts every call and keeps the trace and failures of the exact evaluations."""

    def __init__(
        self, prefix: Ledger, sample_rate: float, steps: int, adjacency: Adjacency, delta: float
    ) -> None:
        self.prefix, self.sample_rate, self.steps = prefix, sample_rate, steps
        self.adjacency, self.delta = adjacency, delta
        self.calls = 0
        self.trace: list[tuple[float, float]] = []
        self.failures: list[tuple[float, str]] = []

    def guarded(self, method, failed: list[tuple[float, str]] | None = None):
        """``sigma -> epsilon`` by ``method``; a backend failure gives nan (noted in ``failed``)."""

        def f(sigma: float) -> float:
            mechanism = _mechanism(sigma, self.sample_rate, self.steps, self.adjacency)
            ledger = Ledger([*self.prefix, mechanism])
            self.calls += 1
            try:
                value = float(method(ledger, delta=self.delta))
            except AccountingInputError:
                raise
            except (AccountantFailure, RuntimeError, ValueError, ArithmeticError) as error:
                # Not "above target": unknown. It steers the search (see _FAILED) but is never
                # a result, and a calibration that cannot land reports it.
                if failed is not None:
                    failed.append((sigma, str(error).strip().splitlines()[0] if str(error) else ""))
                return math.nan
            return value

        return f

    def exact(self, method):
        """:meth:`guarded` that records every evaluation in the trace and failures."""
        guarded = self.guarded(method, self.failures)

        def f(sigma: float) -> float:
            value = guarded(sigma)
            self.trace.append((sigma, value))
            return value

        return f


def _forecast_seed(cheap: _Solver, solver: _Solver, seed: float, slope: float) -> float:
    """Where the exact search starts: a forecast candidate that lands (the final solve then
    returns it without a new evaluation), else the last rescaled candidate or ``seed``."""
    scale = 1.0
    for _ in range(3):
        candidate = cheap.solve(seed, slope, scale)
        if candidate is None:
            break
        value = solver.value(candidate)
        if solver.floor <= value <= solver.target:
            return candidate
        forecast = cheap.value(candidate)
        if not (math.isfinite(value) and math.isfinite(forecast) and forecast > 0):
            break
        scale, seed = value / forecast, candidate
    return seed


def _no_landing(
    solver: _Solver,
    failures: list[tuple[float, str]],
    name: str,
    target: float,
    delta: float,
    sample_rate: float,
    steps: int,
    rtol: float,
    lo: float,
    max_sigma: float,
) -> CalibrationError:
    """The error for a search that found no sigma in the window, saying why."""
    where = f"target epsilon={target:g} at delta={delta:g} (sample_rate={sample_rate:g}, "
    where += f"steps={steps})"
    known = {s: v for s, v in solver.cache.items() if not math.isnan(v)}
    above = [s for s, v in known.items() if v > target]
    below = [s for s, v in known.items() if v < solver.floor]
    if failures:
        sigmas = sorted({s for s, _ in failures})
        return CalibrationError(
            f"{where} cannot be reached within rtol={rtol:g} with accountant {name!r}: it failed "
            f"at noise_multiplier {', '.join(f'{s:.4g}' for s in sigmas[:6])} "
            f"({failures[-1][1]}); not calibrating rather than returning a sigma that spends "
            "less than the target"
        )
    if not below and (not above or max(above) >= max_sigma * (1 - 1e-9)):
        return CalibrationError(
            f"{where} is unreachable: it needs noise_multiplier > "
            f"max_noise_multiplier={max_sigma:g}"
        )
    if not above and below and min(below) <= lo * (1 + 1e-9):
        return CalibrationError(
            f"{where} cannot be reached within rtol={rtol:g} with accountant {name!r}: even "
            f"noise_multiplier={lo:g} gives epsilon={known[min(below)]:.4g}"
        )
    closest = ", ".join(f"sigma {s:.6g} -> epsilon {known[s]:.6g}" for s in sorted(known)[:6])
    return CalibrationError(
        f"{where} cannot be reached within rtol={rtol:g} with accountant {name!r} ({closest})"
    )


def calibrate(
    target_epsilon: float,
    delta: float,
    sample_rate: float,
    steps: int,
    accountant: str | Accountant = PRIMARY,
    *,
    max_noise_multiplier: float = MAX_NOISE_MULTIPLIER,
    rtol: float = 0.01,
    prefix: Ledger | None = None,
    adjacency: Adjacency = "add_remove",
) -> float:
    """The smallest noise multiplier whose epsilon is at most ``target_epsilon``.

    The ledger is ``prefix`` (mechanisms already spent, default none) plus ``steps``
    Poisson-subsampled Gaussian steps at ``sample_rate`` (a plain Gaussian when it is 1).
    The achieved epsilon is in ``[target * (1 - rtol), target]`` under ``accountant`` (for
    ``prv`` at eps_error = 1% of the target, capped at 0.01, the setting
    :func:`epsilon` uses for it). Raises :class:`CalibrationError` when the target needs a
    sigma above ``max_noise_multiplier``.

    ``adjacency="replace_one"`` calibrates replace-one steps (e.g. DPAgg-TI with groups: one
    image moves its group's clipped vector by up to 2C); only ``accountant="pld"`` accounts
    them. The returned sigma is the noise std divided by C, as for add/remove (see
    :class:`~isoeps.accountants.mechanisms.SubsampledGaussian`).

    Args:
        target_epsilon: the epsilon to meet; finite and > 0.
        delta: the target delta, in (0, 1).
        sample_rate: q of each step, in (0, 1].
        steps: T, the number of Gaussian steps.
        accountant: the accountant's registered name, or an instance.
        max_noise_multiplier: the largest sigma searched.
        rtol: how far below the target the achieved epsilon may fall, relative.
        prefix: mechanisms already spent, composed before the steps; None for none.
        adjacency: ``add_remove`` or ``replace_one``, of the steps.

    Returns:
        The noise multiplier sigma.

    Raises:
        CalibrationError: see above; also for a ``prefix`` with a non-private entry.
        AccountingInputError: an argument is out of range or of the wrong type, or
            ``adjacency`` is one ``accountant`` cannot account.
    """
    return calibrate_detailed(
        target_epsilon,
        delta,
        sample_rate,
        steps,
        accountant,
        max_noise_multiplier=max_noise_multiplier,
        rtol=rtol,
        prefix=prefix,
        adjacency=adjacency,
    ).noise_multiplier
