"""The privacy budget of one cell: (epsilon, delta), ``inf`` or ``public``."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from isoeps.accountants.mechanisms import AccountingInputError

BudgetMode = Literal["private", "inf", "public"]


def default_delta(num_private: int) -> float:
    """The DPImageBench rule: delta = 1 / (N ln N), N = number of private images."""
    if num_private < 2:
        raise AccountingInputError(f"need at least 2 private images for delta, got {num_private}")
    return 1.0 / (num_private * math.log(num_private))


def cell_delta(rule: str | float, num_private: int) -> float:
    """A cell's delta from its suite's rule: ``"auto"`` is :func:`default_delta` of N, a
    number is itself. The one place the rule is read (run, plan and verification).

    Args:
        rule: ``"auto"`` or a delta.
        num_private: N, the number of private records (read only for ``"auto"``).

    Returns:
        The cell's delta.

    Raises:
        AccountingInputError: ``"auto"`` with fewer than 2 private records.
    """
    return default_delta(num_private) if rule == "auto" else float(rule)


@dataclass(frozen=True)
class PrivacyBudget:
    """One of: ``private`` (epsilon > 0 and delta), ``inf`` (the method's non-private mode,
    no clipping or noise) or ``public`` (the method's public-only mode, no private access).

    The privacy unit is one image with all its captions; adjacency is add/remove unless the
    ledger says otherwise.
    """

    mode: BudgetMode
    epsilon: float | None = None
    delta: float | None = None

    def __post_init__(self) -> None:
        if self.mode == "private":
            eps, delta = self.epsilon, self.delta
            if eps is None or not isinstance(eps, (int, float)) or math.isnan(eps) or eps <= 0:
                raise AccountingInputError(f"epsilon must be > 0, got {eps!r}")
            if math.isinf(eps):
                raise AccountingInputError("epsilon=inf: use the 'inf' budget instead")
            if delta is None or math.isnan(delta) or not 0 < delta < 1:
                raise AccountingInputError(f"delta must be in (0, 1), got {delta!r}")
        elif self.mode in ("inf", "public"):
            if self.epsilon is not None:
                raise AccountingInputError(f"budget {self.mode!r} takes no epsilon")
        else:
            raise AccountingInputError(
                f"budget mode must be 'private', 'inf' or 'public', got {self.mode!r}"
            )

    @classmethod
    def private(cls, epsilon: float, delta: float) -> PrivacyBudget:
        """A ``private`` budget of (``epsilon``, ``delta``).

        Args:
            epsilon: the target epsilon; finite and > 0.
            delta: the target delta, in (0, 1).

        Returns:
            The budget.

        Raises:
            AccountingInputError: ``epsilon`` or ``delta`` is out of range.
        """
        return cls("private", float(epsilon), float(delta))

    @classmethod
    def non_private(cls) -> PrivacyBudget:
        return cls("inf")

    @classmethod
    def public_only(cls) -> PrivacyBudget:
        return cls("public")

    @classmethod
    def parse(cls, value: str | float, *, delta: float | None = None) -> PrivacyBudget:
        """Parse ``"inf"``, ``"public"`` or a number (epsilon; then ``delta`` is required).

        Args:
            value: ``"inf"`` (or ``"infinity"``), ``"public"``, or a target epsilon;
                case-insensitive.
            delta: the target delta of a numeric ``value``; ignored otherwise.

        Returns:
            The budget.

        Raises:
            AccountingInputError: ``value`` is none of these, a number comes without ``delta``,
                or epsilon or delta is out of range.
        """
        text = str(value).strip().lower()
        if text in ("inf", "infinity"):
            return cls.non_private()
        if text == "public":
            return cls.public_only()
        try:
            eps = float(text)
        except ValueError:
            raise AccountingInputError(
                f"budget must be a number > 0, 'inf' or 'public', got {value!r}"
            ) from None
        if delta is None:
            raise AccountingInputError(f"budget epsilon={eps} needs a delta")
        return cls.private(eps, delta)

    @property
    def is_private(self) -> bool:
        return self.mode == "private"

    @property
    def label(self) -> str:
        """A short label for tables: the epsilon, ``inf`` or ``public``."""
        return f"{self.epsilon:g}" if self.mode == "private" else self.mode

    def to_dict(self) -> dict[str, object]:
        return {"mode": self.mode, "epsilon": self.epsilon, "delta": self.delta}
