"""Re-accounting a recorded ledger: the one definition of what a cell's privacy record says.

The runner calls :func:`reaccount` on the harness's ledger when ``fit`` returns; ``isoeps
results reindex|merge`` and ``isoeps report`` call it again on every stored ``ledger.json``.
:func:`primary_accountant` is the one choice of accountant for a ledger: ``pld`` when the
ledger needs replace-one adjacency (prv accounts add/remove only), else :data:`PRIMARY`.

Imports no torch and no accounting library (the backends load lazily).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Any

from isoeps.accountants.base import PRIMARY
from isoeps.accountants.budget import PrivacyBudget
from isoeps.accountants.calibration import epsilon
from isoeps.accountants.ledger import Ledger

#: The accountant of replace-one ledgers (prv has no replace-one mode).
REPLACE_ONE_PRIMARY = "pld"


def primary_accountant(adjacency: str) -> str:
    """The accountant whose epsilon a ledger of ``adjacency`` is held to."""
    return REPLACE_ONE_PRIMARY if adjacency == "replace_one" else PRIMARY


def ledger_digest(ledger: Ledger) -> str:
    """sha256 of the ledger's canonical JSON (what ``ledger.json`` holds)."""
    return hashlib.sha256(ledger.to_json().encode()).hexdigest()


def reaccount(
    ledger: Ledger | None,
    *,
    budget: PrivacyBudget,
    delta: float | None,
    cross_checks: Sequence[str] = (),
) -> dict[str, Any]:
    """Epsilon of ``ledger`` by its primary accountant and by every cross-check.

    ``refused`` names why a private cell may not be stored (or, for a stored cell, may not be
    trusted): an accountant failure, raw access, an epsilon over the target, or an empty
    ledger (a private cell that recorded no release). ``ledger is None`` is a public cell (no
    guard was created). ``ledger_sha256`` is :func:`ledger_digest` of the ledger.

    Args:
        ledger: the cell's ledger, or None for a public cell.
        budget: the cell's budget (its mode and target epsilon).
        delta: the cell's delta.
        cross_checks: further accountants to report (an error is reported, not raised).

    Returns:
        The privacy record: mode, target, delta, accountant, adjacency, achieved epsilon,
        epsilon by accountant, entry count, ledger digest and the refusal reason (or None).
    """
    if ledger is None:  # public mode: the guard was never created
        return _public_record(budget)
    adjacency = ledger.adjacency
    primary = primary_accountant(adjacency)
    by_accountant = _epsilons(ledger, delta, [primary, *[c for c in cross_checks if c != primary]])
    primary_value = by_accountant[primary]
    achieved = math.nan if isinstance(primary_value, str) else float(primary_value)
    return {
        "mode": budget.mode,
        "target_epsilon": budget.epsilon,
        "delta": delta,
        "accountant": primary,
        "adjacency": adjacency,
        "epsilon_achieved": achieved,
        "epsilon_by_accountant": by_accountant,
        "ledger_entries": len(ledger),
        "ledger_sha256": ledger_digest(ledger),
        "refused": _refusal(ledger, budget, delta, primary, primary_value, achieved),
    }


def _public_record(budget: PrivacyBudget) -> dict[str, Any]:
    """The privacy record of a public cell: no guard, no ledger, epsilon 0."""
    return {
        "mode": budget.mode,
        "target_epsilon": None,
        "delta": None,
        "accountant": None,
        "adjacency": None,
        "epsilon_achieved": 0.0,
        "epsilon_by_accountant": {},
        "ledger_entries": 0,
        "ledger_sha256": None,
        "refused": None,
    }


def _epsilons(ledger: Ledger, delta: float | None, names: list[str]) -> dict[str, float | str]:
    """Epsilon of ``ledger`` by each accountant in ``names`` (``"error: ..."`` where it failed)."""
    by_accountant: dict[str, float | str] = {}
    for name in names:
        try:
            by_accountant[name] = epsilon(ledger, delta, name)
        except Exception as exc:  # noqa: BLE001 (reported; a primary failure refuses the cell)
            by_accountant[name] = f"error: {type(exc).__name__}: {exc}"
    return by_accountant


def _refusal(
    ledger: Ledger,
    budget: PrivacyBudget,
    delta: float | None,
    primary: str,
    primary_value: float | str,
    achieved: float,
) -> str | None:
    """Why a private cell with this ledger may not be stored or trusted; None when it may."""
    if not budget.is_private:
        return None
    if ledger.is_empty:
        return "an empty ledger in a private cell: the method recorded no release through the guard"
    if math.isnan(achieved):
        return f"{primary} could not account the ledger ({primary_value})"
    if math.isinf(achieved):
        return "the ledger records raw (non-private) access in a private cell"
    if not achieved <= budget.epsilon:  # zero tolerance
        return (
            f"{primary} epsilon {achieved:.6g} exceeds the target {budget.epsilon:g} "
            f"at delta {delta:.3g}"
        )
    return None
