"""The ``rdp`` backend: opacus's RDP analysis. For information only (looser than PRV)."""

from __future__ import annotations

from typing import ClassVar

from isoeps.accountants.backends.prv import check_add_remove, composition
from isoeps.accountants.base import Accountant
from isoeps.accountants.ledger import Ledger

#: Orders beyond opacus's defaults (which stop at 63): at small epsilon (large sigma) the best
#: order is larger, and opacus then warns and returns a looser bound.
HIGH_ORDERS = (80.0, 96.0, 128.0, 192.0, 256.0, 384.0, 512.0, 768.0, 1024.0)


class RDPAccountant(Accountant):
    """Sums the RDP curves of all entries over opacus's default orders (extended by
    :data:`HIGH_ORDERS`), then converts."""

    name: ClassVar[str] = "rdp"

    def __init__(self, *, orders: list[float] | None = None) -> None:
        self.orders = orders

    def epsilon(self, ledger: Ledger, *, delta: float) -> float:
        """Epsilon at ``delta`` from opacus's RDP analysis, over this instance's orders.

        Without ``orders``, opacus's default alphas plus higher orders are used.

        Args:
            ledger: the mechanisms to compose (add/remove adjacency).
            delta: the target delta.

        Returns:
            Epsilon; ``inf`` for a ledger with a ``NonPrivate`` entry, 0.0 for one with no
            Gaussian steps.

        Raises:
            AccountingInputError: the ledger's adjacency is ``replace_one``.
        """
        from opacus.accountants.analysis import rdp as analysis
        from opacus.accountants.rdp import RDPAccountant as _OpacusRDP

        check_add_remove(ledger, self.name)
        if not ledger.is_private:
            return float("inf")
        counts = composition(ledger)
        if not counts:
            return 0.0
        orders = self.orders or [*_OpacusRDP.DEFAULT_ALPHAS, *HIGH_ORDERS]
        total = sum(
            analysis.compute_rdp(q=q, noise_multiplier=sigma, steps=steps, orders=orders)
            for (sigma, q), steps in counts.items()
        )
        eps, _ = analysis.get_privacy_spent(orders=orders, rdp=total, delta=delta)
        return float(eps)
