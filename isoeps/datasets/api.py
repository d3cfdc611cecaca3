"""Loading splits by dataset name: the entry point the harness, methods and CLI use."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from isoeps import registry
from isoeps.datasets.base import ImageSplit
from isoeps.datasets.splits import check_disjoint
from isoeps.errors import ConfigError

GROUP = "isoeps.datasets"


def dataset_names() -> list[str]:
    """Every registered dataset source (built-ins and plugins)."""
    return registry.names(GROUP)


def get_source(name: str, *, root: str | None = None, options: Mapping[str, Any] | None = None):
    """An instance of the source ``name`` configured by ``options`` (and ``root`` if given).

    Args:
        name: the registered source name.
        root: the dataset root, which overrides ``options["root"]``; None to leave it to
            the options or the source's environment variable.
        options: the source's config fields; None for its defaults.

    Returns:
        The source instance.

    Raises:
        UnknownNameError: no source is registered as ``name``.
        ConfigError: ``root`` is given for an embedded dataset, or ``options`` do not
            validate.
    """
    cls = registry.get(GROUP, name)
    options = dict(options or {})
    if root is not None:
        if "root" not in cls.Config.model_fields:
            raise ConfigError(f"{name}: this dataset takes no root (it is embedded)")
        options["root"] = str(root)
    return cls(**options)


def load_split(
    name: str,
    split: str,
    *,
    resolution: int = 32,
    n: int | None = None,
    seed: int = 0,
    root: str | None = None,
    options: dict | None = None,
) -> ImageSplit:
    """One split of dataset ``name`` at ``resolution``; ``n`` items (default: the source's size).

    Args:
        name: the registered source name.
        split: the split to load (e.g. ``private``).
        resolution: side length R of the square images, in pixels.
        n: how many items; None for the source's default.
        seed: the seed that picks (or renders) the items.
        root: the dataset root; see :func:`get_source`.
        options: the source's config fields; see :func:`get_source`.

    Returns:
        The split, with uint8 ``(n, 3, R, R)`` images.
    """
    source = get_source(name, root=root, options=options)
    return source.load(split, resolution=resolution, n=n, seed=seed)


def load_splits(
    name: str,
    splits: Sequence[str] | None = None,
    *,
    resolution: int = 32,
    n: int | dict[str, int | None] | None = None,
    seed: int = 0,
    root: str | None = None,
    options: dict | None = None,
) -> dict[str, ImageSplit]:
    """Several splits of one dataset, checked to share no image id or pixels.

    ``splits`` defaults to every split the source has (``source.splits``: the four of
    :data:`~isoeps.datasets.base.SPLITS` for most sources). ``n`` is one count for every split,
    or a per-split mapping (missing splits use the source's default size). Splits that declare
    shared records (``ImageSplit.shares_records_with``) may share exactly those.

    Args:
        name: the registered source name.
        splits: which splits to load; None for all of the source's.
        resolution: side length R of the square images, in pixels.
        n: one count, a ``{split: count}`` mapping, or None for the source's default sizes.
        seed: the seed that picks (or renders) the items.
        root: the dataset root; see :func:`get_source`.
        options: the source's config fields; see :func:`get_source`.

    Returns:
        ``{split: ImageSplit}`` in the order of ``splits``.

    Raises:
        ConfigError: ``n`` names a split that is not loaded.
        DataError: two splits share an image id or identical pixels.
    """
    source = get_source(name, root=root, options=options)
    splits = list(source.splits) if splits is None else list(splits)
    if isinstance(n, Mapping):
        unknown = set(n) - set(splits)
        if unknown:
            raise ConfigError(f"n: unknown split(s) {sorted(unknown)}; loading {splits}")
    loaded = {
        split: source.load(
            split, resolution=resolution, n=n.get(split) if isinstance(n, Mapping) else n, seed=seed
        )
        for split in splits
    }
    check_disjoint(loaded)
    return loaded
