"""The ``pld`` backend: Google's dp-accounting privacy loss distributions.

A cross-check for ``prv``, and the only backend for ``replace_one`` adjacency: a ledger with
any replace_one entry is accounted entirely under REPLACE_ONE (an add/remove guarantee
implies it).
"""

from __future__ import annotations

from typing import ClassVar

from isoeps.accountants.backends.prv import composition
from isoeps.accountants.base import Accountant
from isoeps.accountants.ledger import Ledger


class PLDAccountant(Accountant):
    """dp-accounting's ``PLDAccountant`` over a ``ComposedDpEvent`` of the ledger."""

    name: ClassVar[str] = "pld"
    supports_replace_one: ClassVar[bool] = True

    def __init__(self, *, value_discretization_interval: float = 1e-4) -> None:
        self.value_discretization_interval = value_discretization_interval

    def epsilon(self, ledger: Ledger, *, delta: float) -> float:
        """Epsilon at ``delta`` from Google's PLD accountant (``dp_accounting``).

        Accounts add/remove and replace-one ledgers, with this instance's
        ``value_discretization_interval``.

        Args:
            ledger: the mechanisms to compose.
            delta: the target delta.

        Returns:
            Epsilon; ``inf`` for a ledger with a ``NonPrivate`` entry, 0.0 for one with no
            Gaussian steps.
        """
        import dp_accounting
        from dp_accounting.pld import PLDAccountant as _Library

        if not ledger.is_private:
            return float("inf")
        counts = composition(ledger)
        if not counts:
            return 0.0
        events = []
        for (sigma, q), steps in counts.items():
            event = dp_accounting.GaussianDpEvent(sigma)
            if q < 1:
                event = dp_accounting.PoissonSampledDpEvent(q, event)
            events.append(dp_accounting.SelfComposedDpEvent(event, steps))
        relation = dp_accounting.NeighboringRelation
        accountant = _Library(
            neighboring_relation=relation.REPLACE_ONE
            if ledger.adjacency == "replace_one"
            else relation.ADD_OR_REMOVE_ONE,
            value_discretization_interval=self.value_discretization_interval,
        )
        accountant.compose(dp_accounting.ComposedDpEvent(events))
        return float(accountant.get_epsilon(delta))
