"""The accountant interface and its registry (``register_accountant``/``create_accountant``).

Backends are registered as ``"module:Class"`` strings and imported on first use, so importing
:mod:`isoeps.accountants` imports neither torch nor any accounting library.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

from isoeps.accountants.ledger import Ledger
from isoeps.errors import IsoepsError


class Accountant(ABC):
    """Computes epsilon for a whole ledger at a given delta, composing every entry."""

    name: ClassVar[str]
    #: True when the backend can account ``replace_one`` adjacency.
    supports_replace_one: ClassVar[bool] = False

    @abstractmethod
    def epsilon(self, ledger: Ledger, *, delta: float) -> float:
        """Epsilon of the composition of all (private) entries of ``ledger`` at ``delta``.

        Backends that return an interval report its upper bound.

        Args:
            ledger: the mechanisms to compose.
            delta: the target delta, in (0, 1).

        Returns:
            Epsilon; ``inf`` when the ledger records non-private access.
        """


class AccountantFailure(IsoepsError, RuntimeError):
    """A backend could not compute epsilon for valid inputs (e.g. prv-accountant rejecting its
    own discretisation). It says nothing about whether epsilon is above or below a target.
    The message (one line) names the mechanisms, delta and the backend's own error; the CLI
    prints it and exits 2."""


class UnknownAccountantError(ValueError):
    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


_ACCOUNTANTS: dict[str, str | Callable[..., Accountant]] = {
    "prv": "isoeps.accountants.backends.prv:PRVAccountant",
    "pld": "isoeps.accountants.backends.pld:PLDAccountant",
    "rdp": "isoeps.accountants.backends.rdp:RDPAccountant",
}

#: The primary accountant: calibration and the matched-epsilon guarantee use it.
PRIMARY = "prv"


def register_accountant(name: str, factory: str | Callable[..., Accountant]) -> None:
    """Register a backend: a class/factory, or a lazy ``"module:attr"`` string.

    Args:
        name: the name :func:`create_accountant` looks it up by; an existing entry is
            replaced.
        factory: called with the accountant's options to build it, or ``"module:attr"``
            naming such a callable, imported on first use.
    """
    _ACCOUNTANTS[name] = factory


def accountant_names() -> list[str]:
    return list(_ACCOUNTANTS)


def create_accountant(name: str, **kwargs: Any) -> Accountant:
    """Instantiate the backend registered as ``name``."""
    if name not in _ACCOUNTANTS:
        raise UnknownAccountantError(
            f"unknown accountant {name!r}; known: {', '.join(_ACCOUNTANTS)}"
        )
    factory = _ACCOUNTANTS[name]
    if isinstance(factory, str):
        module, attr = factory.split(":")
        factory = getattr(importlib.import_module(module), attr)
    return factory(**kwargs)
