"""Attribute statistics of a split: frequencies and the total-variation distance between them."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from isoeps.datasets.base import ImageSplit


def attribute_frequencies(split: ImageSplit) -> dict[str, dict[str, float]]:
    """``{attribute: {value: fraction}}`` observed in ``split`` (empty without attributes)."""
    out: dict[str, dict[str, float]] = {}
    for name, values in (split.attributes or {}).items():
        labels = (split.attribute_schema or {}).get(name) or [
            str(i) for i in range(int(values.max(initial=0)) + 1)
        ]
        counts = np.bincount(values, minlength=len(labels)).astype(np.float64)
        total = max(counts.sum(), 1.0)
        out[name] = {label: float(counts[i] / total) for i, label in enumerate(labels)}
    return out


def total_variation(p: Mapping[str, float], q: Mapping[str, float]) -> float:
    """Total-variation distance between two frequency tables over the union of their values.

    Args:
        p: ``{value: frequency}``; a missing value counts as 0.
        q: likewise.

    Returns:
        Half the L1 distance; in [0, 1] for normalised tables.
    """
    keys = set(p) | set(q)
    return 0.5 * sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in keys)
