"""Assigning a source's items to splits: a named pool and a fraction range of it.

Every item gets a stable pseudo-random rank in [0, 1) from its id alone (not from the seed), so
a split's pool is the same in every run; ranges that do not overlap give disjoint pools. The
``seed`` only picks which ``n`` items of the pool a run uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from isoeps.datasets.source import rank_fraction, take_subset
from isoeps.errors import DataError

T = TypeVar("T")


class SplitSpec(BaseModel):
    """Where one split comes from: ``source`` (a pool, e.g. ``train2017``) and a rank range."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    source: str
    range: tuple[float, float] = Field((0.0, 1.0), description="[lo, hi) fraction of the pool")

    @model_validator(mode="after")
    def _valid_range(self) -> SplitSpec:
        lo, hi = self.range
        if not 0.0 <= lo < hi <= 1.0:
            raise ValueError(f"range must satisfy 0 <= lo < hi <= 1, got {list(self.range)}")
        return self


def check_no_range_overlap(splits: dict[str, SplitSpec], *, name: str) -> None:
    """Two splits drawing from one pool must take disjoint ranges of it.

    Args:
        splits: ``{split: SplitSpec}`` of one source.
        name: the source's name, for the message.

    Raises:
        ValueError: two splits of one pool take overlapping ranges.
    """
    items = sorted(splits.items())
    for i, (a, spec_a) in enumerate(items):
        for b, spec_b in items[i + 1 :]:
            if (
                spec_a.source == spec_b.source
                and spec_a.range[0] < spec_b.range[1]
                and spec_b.range[0] < spec_a.range[1]
            ):
                raise ValueError(
                    f"{name}: splits.{a} and splits.{b} take overlapping ranges "
                    f"{list(spec_a.range)} and {list(spec_b.range)} of pool {spec_a.source!r}"
                )


def in_range(items: Sequence[T], ids: Sequence[str], spec: SplitSpec, *, label: str) -> list[T]:
    """The items whose rank falls in ``spec.range`` (in pool order); never empty.

    Args:
        items: the pool's items, in pool order.
        ids: the id of each item, in the same order; its rank decides membership.
        spec: the split's pool and ``[lo, hi)`` range.
        label: names the split in the error.

    Returns:
        The items in range, in pool order.

    Raises:
        DataError: no item falls in the range.
    """
    lo, hi = spec.range
    pool = [item for item, item_id in zip(items, ids) if lo <= rank_fraction(item_id) < hi]
    if not pool:
        raise DataError(f"{label}: no items in range {list(spec.range)} of {spec.source!r}")
    return pool


def subset(pool: Sequence[T], spec: SplitSpec, *, n: int | None, seed: int, label: str) -> list[T]:
    """``n`` items of ``pool`` chosen by ``seed`` (all of it when ``n`` is None), in pool order.

    Args:
        pool: the items in the split's range.
        spec: the split's pool and range, for the error message.
        n: how many items; None for all.
        seed: the seed of the choice.
        label: salts the choice (so splits choose independently) and names the split in
            errors.

    Returns:
        The chosen items, in pool order.

    Raises:
        DataError: ``n`` exceeds the pool.
        ConfigError: ``n`` is negative.
    """
    try:
        chosen = take_subset(len(pool), n=n, seed=seed, salt=label)
    except DataError as exc:
        raise DataError(f"{label} (pool {spec.source!r} range {list(spec.range)}): {exc}") from None
    return [pool[i] for i in chosen]
