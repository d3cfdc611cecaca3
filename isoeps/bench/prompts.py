"""The prompts a cell samples from, and what it drew: typed records the cell flow passes on.

Prompts come from the reference split's captions. A class-conditional source (records with a
``label`` attribute, e.g. Fashion-MNIST) gets its prompts per class, in the class proportions
of the reference split: a stratified draw, so that ``n`` samples hold each class as often as
the held-out data does. The private split's own class counts are never read for this: they
would be a release outside the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: The attribute that makes a source class-conditional.
CLASS_ATTRIBUTE = "label"


@dataclass(frozen=True)
class Prompts:
    """``prompts[k]`` was taken from record ``index[k]`` (id ``source_ids[k]``) of its split;
    ``attributes`` (name -> int array) are what each prompt asks for, when the split has them."""

    prompts: list[str]
    source_ids: list[str]
    index: np.ndarray
    attributes: dict[str, np.ndarray] | None = None

    @property
    def labels(self) -> np.ndarray | None:
        """The class each prompt asks for (class-conditional sources only)."""
        return (self.attributes or {}).get(CLASS_ATTRIBUTE)


@dataclass(frozen=True)
class Extraction:
    """Samples drawn from private training captions (memorisation's extraction test)."""

    prompts: Prompts
    samples: Any


@dataclass(frozen=True)
class Drawn:
    """Everything a cell drew after ``fit``: prompted, open-prompt and extraction samples."""

    samples: Any
    prompts: Prompts
    extraction: Extraction | None = None
    open_samples: Any = None


def choose_prompts(split: Any, *, n: int, seed: int) -> Prompts:
    """``n`` prompts from ``split``'s captions, cycling through a seeded permutation of its
    records (see :func:`choose_class_prompts` for class-conditional sources).

    Args:
        split: the :class:`~isoeps.datasets.base.ImageSplit` the prompts come from.
        n: how many prompts.
        seed: the draw's seed.

    Returns:
        The prompts with their source records and, when known, their attributes.
    """
    if len(split) == 0:
        raise ValueError(f"{split.dataset}/{split.split}: no records to take prompts from")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(split))
    return _prompts_at(split, order[np.arange(n) % len(split)], rng)


def choose_class_prompts(split: Any, *, n: int, seed: int) -> Prompts:
    """``n`` prompts drawn per class, in ``split``'s class proportions, in a seeded order.

    Each class gets its largest-remainder share of ``n``; within a class, records are taken
    in a seeded permutation, cycling when a class has fewer records than its share.

    Args:
        split: a split with a ``label`` attribute.
        n: how many prompts.
        seed: the draw's seed.

    Returns:
        The prompts, shuffled so that any prefix (the stored grid) mixes the classes.
    """
    labels = np.asarray(split.attributes[CLASS_ATTRIBUTE])
    if len(labels) == 0:
        raise ValueError(f"{split.dataset}/{split.split}: no records to take prompts from")
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    shares = _largest_remainder(counts, n)
    chosen = []
    for label, share in zip(classes, shares, strict=True):
        members = np.flatnonzero(labels == label)[rng.permutation(int((labels == label).sum()))]
        chosen.append(members[np.arange(share) % len(members)])
    index = np.concatenate(chosen)[rng.permutation(n)] if n else np.zeros(0, np.int64)
    return _prompts_at(split, index, rng)


def prompts_for(split: Any, *, n: int, seed: int) -> Prompts:
    """Class-stratified prompts for a class-conditional split, plain ones otherwise.

    Args:
        split: the split prompts are drawn from.
        n: how many prompts.
        seed: the seed of the draw.

    Returns:
        The prompts with their source records.
    """
    if split.attributes and CLASS_ATTRIBUTE in split.attributes:
        return choose_class_prompts(split, n=n, seed=seed)
    return choose_prompts(split, n=n, seed=seed)


def _largest_remainder(counts: np.ndarray, n: int) -> np.ndarray:
    """Integer shares of ``n`` proportional to ``counts`` (Hamilton's method; ties by order)."""
    exact = counts / counts.sum() * n
    shares = np.floor(exact).astype(np.int64)
    shares[np.argsort(-(exact - shares), kind="stable")[: n - int(shares.sum())]] += 1
    return shares


def _prompts_at(split: Any, index: np.ndarray, rng: np.random.Generator) -> Prompts:
    """The prompts of records ``index``: one of each record's captions, picked by ``rng``."""
    picks = rng.integers(0, 1 << 30, size=len(index))
    prompts = [split.captions[i][picks[k] % len(split.captions[i])] for k, i in enumerate(index)]
    attributes = None
    if split.attributes:
        attributes = {name: np.asarray(values)[index] for name, values in split.attributes.items()}
    return Prompts(
        prompts=prompts,
        source_ids=[split.ids[i] for i in index],
        index=index,
        attributes=attributes,
    )
