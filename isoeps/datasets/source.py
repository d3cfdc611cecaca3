"""The dataset-source contract: a named, configured loader of splits.

A source class has a ``name``, a one-line ``description``, a pydantic ``Config`` (extra fields
are forbidden, so a typo names its field) and ``load(split, *, resolution, n, seed)`` returning
an :class:`~isoeps.datasets.base.ImageSplit`. Construct it as ``Source(config)`` or
``Source(**options)``. ``splits`` lists the splits the source has: the four of
:data:`~isoeps.datasets.base.SPLITS` by default; a source may drop one (Fashion-MNIST has no
public split) or add an optional one (``validation``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from isoeps.datasets.base import ALL_SPLITS, SPLITS, ImageSplit
from isoeps.errors import ConfigError, DataError


class SourceConfig(BaseModel):
    """Base of every source's options: unknown fields are an error naming the field."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DatasetSource:
    """Base class of dataset sources (see the module docstring)."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    Config: ClassVar[type[SourceConfig]] = SourceConfig
    splits: ClassVar[tuple[str, ...]] = SPLITS
    #: split -> why the source lacks it, appended to the error for that split.
    missing_split_notes: ClassVar[Mapping[str, str]] = {}

    def __init__(self, config: SourceConfig | None = None, /, **options: Any) -> None:
        if config is not None and options:
            raise ConfigError(f"{self.name}: pass either a config or options, not both")
        if config is None:
            try:
                config = self.Config(**options)
            except ValidationError as exc:
                raise ConfigError(_format_validation(self.name, exc)) from None
        elif not isinstance(config, self.Config):
            raise ConfigError(
                f"{self.name}: config must be {self.Config.__name__}, got {type(config).__name__}"
            )
        self.config = config

    def load(
        self, split: str, *, resolution: int = 32, n: int | None = None, seed: int = 0
    ) -> ImageSplit:
        """Load one split: ``n`` items chosen (or rendered) by ``seed``, as R x R images.

        Args:
            split: one of :attr:`splits`.
            resolution: side length R of the square images, in pixels; >= 4.
            n: how many items; None for the source's default (its pool, or a default size).
            seed: the seed that picks (or renders) the items.

        Returns:
            The split, with uint8 ``(n, 3, R, R)`` images.

        Raises:
            ConfigError: ``split`` or ``resolution`` is not supported.
            DataError: the data cannot be read, or ``n`` exceeds what is available.
        """
        raise NotImplementedError

    def available(self, split: str) -> int | None:
        """How many items ``split`` can hold (None: unbounded, e.g. procedural data)."""
        return None

    def describe(self) -> dict[str, Any]:
        """What ``isoeps data inspect`` prints about the source beyond counts (e.g. the shift)."""
        return {"name": self.name, "description": self.description}

    @classmethod
    def check_split(cls, split: str) -> None:
        """Raise :class:`ConfigError` unless ``split`` is one of this source's splits.

        Args:
            split: a split name.
        """
        if split not in ALL_SPLITS:
            raise ConfigError(f"unknown split {split!r}; known: {', '.join(ALL_SPLITS)}")
        if split not in cls.splits:
            note = cls.missing_split_notes.get(split, "")
            raise ConfigError(
                f"{cls.name or cls.__name__}: this dataset has no {split} split (it has "
                f"{', '.join(cls.splits)})" + (f"; {note}" if note else "")
            )

    @staticmethod
    def check_resolution(resolution: int) -> None:
        if not isinstance(resolution, int) or resolution < 4:
            raise ConfigError(f"resolution must be an int >= 4, got {resolution!r}")


def _format_validation(name: str, exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "(options)"
        parts.append(f"{where}: {error['msg']}")
    return f"{name} options: " + "; ".join(parts)


def resolve_root(*, name: str, root: str | None, env_var: str, layout: str) -> Path:
    """The dataset root from ``root`` or ``$env_var``; a DataError says how to provide it.

    Args:
        name: the source's name, for the message.
        root: the root given as an option; None to read ``$env_var``.
        env_var: the environment variable that may hold the root.
        layout: the expected folder layout, for the message.

    Returns:
        The root, with ``~`` expanded.

    Raises:
        DataError: neither is set, or the path is not a directory.
    """
    chosen = root or os.environ.get(env_var)
    if not chosen:
        raise DataError(
            f"{name}: no dataset root given; pass root=/path (--root) or set ${env_var}. "
            f"Expected layout: {layout}"
        )
    path = Path(chosen).expanduser()
    if not path.is_dir():
        raise DataError(f"{name}: root {path} is not a directory. Expected layout: {layout}")
    return path


def take_subset(count: int, *, n: int | None, seed: int, salt: str) -> list[int]:
    """``n`` of ``count`` indices, chosen by ``(seed, salt)`` and returned sorted.

    Args:
        count: how many items there are.
        n: how many to take; None for all.
        seed: the seed of the choice.
        salt: mixed into the seed, so that choices with the same seed differ by purpose.

    Returns:
        The chosen indices, sorted.

    Raises:
        DataError: ``n`` exceeds ``count``.
        ConfigError: ``n`` is negative.
    """
    import numpy as np

    if n is None or n >= count:
        if n is not None and n > count:
            raise DataError(f"asked for n={n} but only {count} items are available")
        return list(range(count))
    if n < 0:
        raise ConfigError(f"n must be >= 0, got {n}")
    rng = np.random.default_rng([seed, _salt_int(salt)])
    return sorted(rng.choice(count, size=n, replace=False).tolist())


def _salt_int(salt: str) -> int:
    import hashlib

    return int.from_bytes(hashlib.sha256(salt.encode()).digest()[:8], "little")


def rank_fraction(item_id: str) -> float:
    """A stable pseudo-random position in [0, 1) for ``item_id``: assigns items to split ranges."""
    return _salt_int(f"isoeps-split-rank/{item_id}") / 2**64
