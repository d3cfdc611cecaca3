"""The cross-split overlap check: no image id or pixel hash may appear in two splits.

The one exception is a record that two non-sensitive splits of one dataset both declare they
share (``ImageSplit.shares_records_with``): Fashion-MNIST's ``eval`` is a half of the test set
whose whole is ``reference``. A private or validation record is never shared.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import combinations

from isoeps.datasets.base import SENSITIVE_SPLITS, ImageSplit
from isoeps.errors import DataError

_SHOWN = 3


def may_share_records(a: str, b: str, *, splits: Mapping[str, ImageSplit]) -> bool:
    """Whether splits ``a`` and ``b`` may hold the same records (same id and pixels).

    Args:
        a: a split name (a key of ``splits``).
        b: another split name.
        splits: split name -> split.

    Returns:
        True only when both splits come from one dataset, each names the other in
        ``shares_records_with``, and neither is sensitive (by key or by its own name).
    """
    first, second = splits[a], splits[b]
    names = {a, b, first.split, second.split}
    return (
        not names & set(SENSITIVE_SPLITS)
        and first.dataset == second.dataset
        and b in first.shares_records_with
        and a in second.shares_records_with
    )


def check_disjoint(
    splits: Mapping[str, ImageSplit], *, id_namespaces: Mapping[str, str] | None = None
) -> None:
    """Raise :class:`DataError` if two splits share an image id or identical pixels.

    Args:
        splits: split name -> split; every pair is checked.
        id_namespaces: split name -> the namespace its ids live in (e.g. the source name).
            Ids are compared only between splits of one namespace (by default all splits
            share one); the exact content hash of the decoded image is compared always.

    A pair that :func:`may_share_records` allows may share records, but only as the same
    record: identical pixels under two different ids are still refused.

    The message names the split pair, the number of shared items and the first few ids (for a
    pixel overlap, the ids on both sides and the hash). COCO train2017 contains most of
    val2014, so mixing years is the usual cause.
    """
    hashes = {name: split.pixel_hashes() for name, split in splits.items()}
    namespaces = id_namespaces or {}
    for a, b in combinations(splits, 2):
        sharing = may_share_records(a, b, splits=splits)
        same_namespace = namespaces.get(a) == namespaces.get(b)
        shared_ids = (
            sorted(set(splits[a].ids) & set(splits[b].ids))
            if same_namespace and not sharing
            else []
        )
        if shared_ids:
            raise DataError(
                f"splits {a!r} and {b!r} share {len(shared_ids)} image id(s), e.g. "
                f"{', '.join(shared_ids[:_SHOWN])}; make the split sources disjoint"
            )
        where_b = {h: i for i, h in enumerate(hashes[b])}
        clashes = [(i, where_b[h], h) for i, h in enumerate(hashes[a]) if h in where_b]
        if sharing:
            # A declared shared record is the same record on both sides; any other pixel clash
            # is two records with one picture, which the sharing does not cover.
            clashes = [(i, j, h) for i, j, h in clashes if splits[a].ids[i] != splits[b].ids[j]]
        if clashes:
            examples = ", ".join(
                f"{splits[a].ids[i]} == {splits[b].ids[j]} (sha1 {h[:12]})"
                for i, j, h in clashes[:_SHOWN]
            )
            raise DataError(
                f"splits {a!r} and {b!r} share {len(clashes)} identical image(s) under different "
                f"ids: {examples}; the same picture is in both sources"
            )
