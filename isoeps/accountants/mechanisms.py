"""Privacy mechanisms: the entries of a ledger.

Each mechanism is a frozen dataclass with a JSON form (``to_dict``/``mechanism_from_dict``).
Adjacency is a property of the mechanism: ``add_remove`` (the default, sensitivity C) or
``replace_one`` (e.g. DPAgg-TI with groups, sensitivity 2C; only the ``pld`` backend accounts it).
In both, ``noise_multiplier`` is the noise std divided by C, the bound on one unit's
contribution (see :class:`SubsampledGaussian`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Literal

Adjacency = Literal["add_remove", "replace_one"]
ADJACENCIES: tuple[str, ...] = ("add_remove", "replace_one")


class AccountingInputError(ValueError):
    """A mechanism, delta or target is out of range. The message names the value."""


def _check_positive(name: str, value: float) -> None:
    if not isinstance(value, (int, float)) or math.isnan(value) or value <= 0:
        raise AccountingInputError(f"{name} must be > 0, got {value!r}")


def _check_sample_rate(value: float) -> None:
    if not isinstance(value, (int, float)) or math.isnan(value) or not 0 < value <= 1:
        raise AccountingInputError(f"sample_rate must be in (0, 1], got {value!r}")


def _check_count(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise AccountingInputError(f"{name} must be an integer >= 1, got {value!r}")


def _check_adjacency(value: str) -> None:
    if value not in ADJACENCIES:
        raise AccountingInputError(f"adjacency must be one of {ADJACENCIES}, got {value!r}")


@dataclass(frozen=True)
class Mechanism:
    """Base class. ``kind`` names the mechanism in JSON."""

    kind: ClassVar[str] = "mechanism"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}

    @property
    def is_private(self) -> bool:
        return True


@dataclass(frozen=True)
class SubsampledGaussian(Mechanism):
    """``steps`` compositions of a Poisson-subsampled Gaussian mechanism.

    ``noise_multiplier`` is sigma: the noise std divided by C, the L2 bound on one unit's
    clipped contribution to the noisy sum. ``sample_rate`` is the Poisson inclusion
    probability q. DP-SGD with T steps is one such entry.

    The convention is dp-accounting's, for both adjacencies:

    - ``add_remove``: adding or removing a unit moves the sum by at most C (the sensitivity),
      so noise std = sigma C.
    - ``replace_one``: replacing a unit's contribution v by v' (both of norm <= C) moves the
      sum by up to 2C. dp-accounting's REPLACE_ONE Gaussian already models that shift: its
      privacy loss compares N(-1, sigma^2) with N(+1, sigma^2) (q mixtures of them with
      N(0, sigma^2) when subsampled), which at q = 1 is the Gaussian mechanism with
      sensitivity 2 and std sigma. So the noise std is still sigma C, *not* sigma 2C: dividing
      by the replace-one sensitivity 2C would double the noise for nothing. Pinned by
      ``tests/accountants/test_accountants_replace_one.py``.
    """

    kind: ClassVar[str] = "subsampled_gaussian"
    noise_multiplier: float
    sample_rate: float
    steps: int
    adjacency: Adjacency = "add_remove"
    note: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        _check_positive("noise_multiplier", self.noise_multiplier)
        _check_sample_rate(self.sample_rate)
        _check_count("steps", self.steps)
        _check_adjacency(self.adjacency)


@dataclass(frozen=True)
class Gaussian(Mechanism):
    """``count`` compositions of a Gaussian mechanism without subsampling (q = 1)."""

    kind: ClassVar[str] = "gaussian"
    noise_multiplier: float
    count: int = 1
    adjacency: Adjacency = "add_remove"
    note: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        _check_positive("noise_multiplier", self.noise_multiplier)
        _check_count("count", self.count)
        _check_adjacency(self.adjacency)


@dataclass(frozen=True)
class NonPrivate(Mechanism):
    """Raw access to private records: the ledger's epsilon becomes infinite."""

    kind: ClassVar[str] = "non_private"
    reason: str = "raw access"

    @property
    def is_private(self) -> bool:
        return False


MECHANISMS: dict[str, type[Mechanism]] = {
    cls.kind: cls for cls in (SubsampledGaussian, Gaussian, NonPrivate)
}


def mechanism_from_dict(data: dict[str, Any]) -> Mechanism:
    data = dict(data)
    kind = data.pop("kind", None)
    if kind not in MECHANISMS:
        raise AccountingInputError(
            f"ledger entry kind must be one of {sorted(MECHANISMS)}, got {kind!r}"
        )
    return MECHANISMS[kind](**data)
