"""``isoeps privacy epsilon|calibrate``: epsilon of DP-SGD settings, and sigma for a target.

Flags are parsed in the handlers, not by argparse types, so that a bad value gives the
one-line ``isoeps privacy: error: ...`` message (exit 2) that names the flag and the value.
"""

from __future__ import annotations

import argparse
import math

_ACCOUNTANTS = ("prv", "pld", "rdp")


class _FlagError(ValueError):
    """A flag value is malformed or out of range."""


def _number(flag: str, text: str, *, low: float, high: float, closed_high: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _FlagError(f"{flag} must be a number, got {text!r}") from None
    if math.isnan(value) or not (low < value < high or (closed_high and value == high)):
        bracket = "]" if closed_high else ")"
        raise _FlagError(f"{flag} must be in ({low:g}, {high:g}{bracket}, got {text!r}")
    return value


def _positive(flag: str, text: str) -> float:
    return _number(flag, text, low=0.0, high=math.inf, closed_high=False)


def _steps(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise _FlagError(f"--steps must be an integer >= 1, got {text!r}") from None
    if value < 1:
        raise _FlagError(f"--steps must be an integer >= 1, got {text!r}")
    return value


def _accountant(text: str, choices: tuple[str, ...]) -> str:
    if text not in choices:
        raise _FlagError(
            f"unknown accountant {text!r} for --accountant; known: {', '.join(choices)}"
        )
    return text


def _shared(args: argparse.Namespace) -> tuple[float, int, float]:
    """The validated (sample_rate, steps, delta)."""
    q = _number("--sample-rate", args.sample_rate, low=0.0, high=1.0, closed_high=True)
    return (
        q,
        _steps(args.steps),
        _number("--delta", args.delta, low=0.0, high=1.0, closed_high=False),
    )


def _common_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sample-rate", required=True, help="Poisson sampling rate q in (0, 1] (1: plain Gaussian)"
    )
    parser.add_argument("--steps", required=True, help="number of steps T >= 1")
    parser.add_argument("--delta", required=True, help="delta in (0, 1)")


def add_parser(subparsers: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser("privacy", help="privacy accounting: epsilon and calibration")
    actions = parser.add_subparsers(dest="privacy_command", metavar="ACTION", required=True)

    eps = actions.add_parser(
        "epsilon", parents=[parent], help="epsilon of T Poisson-subsampled Gaussian steps"
    )
    eps.add_argument(
        "--noise-multiplier", required=True, help="sigma: noise std / sensitivity (> 0)"
    )
    _common_flags(eps)
    eps.add_argument("--accountant", default="all", help="prv, pld, rdp or all (default: all)")
    eps.set_defaults(handler=_epsilon)

    cal = actions.add_parser(
        "calibrate", parents=[parent], help="smallest sigma whose epsilon is at most the target"
    )
    cal.add_argument("--epsilon", required=True, help="target epsilon > 0")
    _common_flags(cal)
    cal.add_argument(
        "--accountant", default="prv", help="prv, pld or rdp (default: prv, the primary)"
    )
    cal.add_argument(
        "--max-noise-multiplier", default=None, help="give up above this sigma (default: 1000)"
    )
    cal.set_defaults(handler=_calibrate)


def _ledger(sigma: float, q: float, steps: int):
    from isoeps.accountants import Gaussian, Ledger, SubsampledGaussian

    mechanism = (
        Gaussian(noise_multiplier=sigma, count=steps)
        if q >= 1
        else SubsampledGaussian(noise_multiplier=sigma, sample_rate=q, steps=steps)
    )
    return Ledger([mechanism])


def _epsilons(ledger, delta: float, names) -> tuple[dict[str, float | None], dict[str, str]]:
    """Epsilon per accountant, and the one-line message of each that failed (value None).

    A failure is never turned into a number under its own name; when only one accountant
    was asked for, it is the command's error (exit 2).
    """
    from isoeps.accountants import epsilon
    from isoeps.accountants.base import AccountantFailure

    values: dict[str, float | None] = {}
    failed: dict[str, str] = {}
    for name in names:
        try:
            values[name] = epsilon(ledger, delta, name)
        except AccountantFailure as error:
            if len(names) == 1:
                raise
            values[name] = None
            failed[name] = str(error).strip().splitlines()[0]
    return values, failed


def _fallback(values: dict[str, float | None], failed: dict[str, str]) -> str | None:
    """The accountant standing in for a failed ``prv`` (``pld``), when it has a value."""
    return "pld" if "prv" in failed and values.get("pld") is not None else None


def _text(values: dict[str, float | None], failed: dict[str, str] | None = None) -> str:
    failed = failed or {}
    fallback = _fallback(values, failed)
    lines = []
    for name, value in values.items():
        if value is None:
            instead = f"; {fallback} (fallback) stands in" if name == "prv" and fallback else ""
            lines.append(f"{name:<4} epsilon = unavailable ({failed.get(name, 'failed')}){instead}")
        else:
            label = " (fallback for prv)" if name == fallback else ""
            lines.append(f"{name:<4} epsilon = {value:.6g}{label}")
    return "\n".join(lines)


def _epsilon(args: argparse.Namespace) -> int:
    from isoeps.cli._common import emit

    sigma = _positive("--noise-multiplier", args.noise_multiplier)
    q, steps, delta = _shared(args)
    chosen = _accountant(args.accountant, (*_ACCOUNTANTS, "all"))
    names = _ACCOUNTANTS if chosen == "all" else (chosen,)
    values, failed = _epsilons(_ledger(sigma, q, steps), delta, names)
    payload = {
        "epsilon": values,
        "delta": delta,
        "noise_multiplier": sigma,
        "sample_rate": q,
        "steps": steps,
        "primary": "prv",
    }
    if failed:
        payload["failed"] = failed
        payload["fallback"] = _fallback(values, failed)
    emit(args, payload, _text(values, failed))
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from isoeps.accountants.calibration import MAX_NOISE_MULTIPLIER, calibrate_detailed
    from isoeps.cli._common import emit

    target = _positive("--epsilon", args.epsilon)
    if math.isinf(target):
        raise _FlagError(f"--epsilon must be finite, got {args.epsilon!r}")
    q, steps, delta = _shared(args)
    chosen = _accountant(args.accountant, _ACCOUNTANTS)
    max_sigma = (
        MAX_NOISE_MULTIPLIER
        if args.max_noise_multiplier is None
        else _positive("--max-noise-multiplier", args.max_noise_multiplier)
    )
    result = calibrate_detailed(target, delta, q, steps, chosen, max_noise_multiplier=max_sigma)
    others = [name for name in _ACCOUNTANTS if name != chosen]
    cross, failed = _epsilons(_ledger(result.noise_multiplier, q, steps), delta, others)
    values = {chosen: result.epsilon, **cross}
    values = {name: values[name] for name in _ACCOUNTANTS}
    payload = {
        "noise_multiplier": result.noise_multiplier,
        "epsilon": values,
        "target_epsilon": target,
        "delta": delta,
        "sample_rate": q,
        "steps": steps,
        "accountant": result.accountant,
        "evaluations": result.evaluations,
    }
    if failed:
        payload["failed"] = failed
    emit(
        args,
        payload,
        f"noise_multiplier = {result.noise_multiplier:.6g}\n{_text(values, failed)}",
    )
    return 0
