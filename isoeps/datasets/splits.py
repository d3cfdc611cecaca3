"""The cross-split overlap check: no image id or pixel hash may appear in two splits."""

from __future__ import annotations

from collections.abc import Mapping
from itertools import combinations

from isoeps.datasets.base import ImageSplit
from isoeps.errors import DataError

_SHOWN = 3


def check_disjoint(
    splits: Mapping[str, ImageSplit], *, id_namespaces: Mapping[str, str] | None = None
) -> None:
    """Raise :class:`DataError` if two splits share an image id or identical pixels.

    Args:
        splits: split name -> split; every pair is checked.
        id_namespaces: split name -> the namespace its ids live in (e.g. the source name).
            Ids are compared only between splits of one namespace (by default all splits
            share one); the exact content hash of the decoded image is compared always.

    The message names the split pair, the number of shared items and the first few ids (for a
    pixel overlap, the ids on both sides and the hash). COCO train2017 contains most of
    val2014, so mixing years is the usual cause.
    """
    hashes = {name: split.pixel_hashes() for name, split in splits.items()}
    namespaces = id_namespaces or {}
    for a, b in combinations(splits, 2):
        same_namespace = namespaces.get(a) == namespaces.get(b)
        shared_ids = sorted(set(splits[a].ids) & set(splits[b].ids)) if same_namespace else []
        if shared_ids:
            raise DataError(
                f"splits {a!r} and {b!r} share {len(shared_ids)} image id(s), e.g. "
                f"{', '.join(shared_ids[:_SHOWN])}; make the split sources disjoint"
            )
        where_b = {h: i for i, h in enumerate(hashes[b])}
        clashes = [(i, where_b[h], h) for i, h in enumerate(hashes[a]) if h in where_b]
        if clashes:
            examples = ", ".join(
                f"{splits[a].ids[i]} == {splits[b].ids[j]} (sha1 {h[:12]})"
                for i, j, h in clashes[:_SHOWN]
            )
            raise DataError(
                f"splits {a!r} and {b!r} share {len(clashes)} identical image(s) under different "
                f"ids: {examples}; the same picture is in both sources"
            )
