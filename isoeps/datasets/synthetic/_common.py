"""What the procedural datasets share: config, split streams, the attribute shift, chunking.

Each split draws from its own seed stream, and each stream is cut into fixed chunks of
:data:`CHUNK` images, each rendered from ``SeedSequence([seed, split code, chunk index])``.
So item ``i`` of a split depends only on ``(seed, split, i)``: asking for more or fewer items
never changes the ones already drawn, and the splits are disjoint by construction (different
streams and id prefixes).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, field_validator

from isoeps.datasets.base import SPLITS, ImageSplit, luma_gray
from isoeps.datasets.source import DatasetSource, SourceConfig
from isoeps.errors import ConfigError

CHUNK = 128
DEFAULT_SIZES: dict[str, int] = {"public": 20000, "private": 20000, "reference": 5000, "eval": 5000}
Shift = Literal["both", "attributes", "texture", "none"]


class SyntheticConfig(SourceConfig):
    shift: Shift = Field(
        "both", description="how public differs from private: attributes, texture, both or none"
    )
    sizes: dict[str, int] = Field(
        default_factory=dict, description="default item count per split (overrides built-ins)"
    )
    captions_per_image: int = Field(5, ge=1, le=10)
    grayscale: bool = Field(
        False,
        description="render, then turn gray (ITU-R 601 luma, three equal channels); off by "
        "default, so default outputs are unchanged",
    )

    @field_validator("sizes")
    @classmethod
    def _known_splits(cls, sizes: dict[str, int]) -> dict[str, int]:
        for split, size in sizes.items():
            if split not in SPLITS:
                raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
            if size < 0:
                raise ValueError(f"sizes.{split} must be >= 0, got {size}")
        return sizes


@dataclass(frozen=True)
class Attribute:
    """A categorical attribute with its private and attribute-shifted public frequencies."""

    name: str
    values: tuple[str, ...]
    private: tuple[float, ...]
    public: tuple[float, ...]

    def probabilities(self, shifted: bool) -> np.ndarray:
        p = np.asarray(self.public if shifted else self.private, dtype=np.float64)
        return p / p.sum()


def _split_code(dataset: str, split: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{dataset}/{split}".encode()).digest()[:4], "little")


class SyntheticSource(DatasetSource):
    """Shared machinery; subclasses implement :meth:`render_chunk`."""

    Config: ClassVar[type[SourceConfig]] = SyntheticConfig
    id_prefix: ClassVar[str] = ""
    shift_doc: ClassVar[str] = ""

    def public_shifts(self, split: str) -> tuple[bool, bool]:
        """(attribute shift, texture shift) in force for ``split``: only public is shifted."""
        if split != "public":
            return False, False
        shift = self.config.shift
        return shift in ("attributes", "both"), shift in ("texture", "both")

    def default_size(self, split: str) -> int:
        return self.config.sizes.get(split, DEFAULT_SIZES[split])

    def render_chunk(
        self,
        rng: np.random.Generator,
        *,
        count: int,
        resolution: int,
        shift_attributes: bool,
        shift_texture: bool,
    ) -> tuple[np.ndarray, dict[str, np.ndarray], list[list[str]]]:
        """``count`` images (uint8 N,3,H,W), attribute index arrays and caption lists.

        Args:
            rng: the chunk's generator; every draw comes from it.
            count: how many images.
            resolution: side length R of the square images, in pixels.
            shift_attributes: draw attributes from the shifted distribution (public split).
            shift_texture: draw textures from the shifted family (public split).

        Returns:
            ``(images, {attribute: indices}, captions)``, one caption list per image.
        """
        raise NotImplementedError

    def attribute_schema(self) -> dict[str, list[str]]:
        raise NotImplementedError

    def load(
        self, split: str, *, resolution: int = 32, n: int | None = None, seed: int = 0
    ) -> ImageSplit:
        """Render ``n`` images of ``split`` from ``seed``, in chunks of independent streams.

        A chunk's stream depends on (seed, source and split, chunk index) alone, so the first
        ``k`` items do not depend on ``n``.

        Args:
            split: one of this source's splits; it decides the attribute and texture shifts.
            resolution: side length R of the square images, in pixels; >= 4.
            n: how many images; None for the split's default size.
            seed: the seed of the rendering.

        Returns:
            The split, with its attributes.

        Raises:
            ConfigError: ``split`` or ``resolution`` is not supported, or ``n`` is negative.
        """
        self.check_split(split)
        self.check_resolution(resolution)
        count = self.default_size(split) if n is None else n
        if count < 0:
            raise ConfigError(f"n must be >= 0, got {count}")
        shift_attributes, shift_texture = self.public_shifts(split)
        code = _split_code(self.name, split)
        images, captions = [], []
        attributes: dict[str, list[np.ndarray]] = {k: [] for k in self.attribute_schema()}
        for chunk in range(-(-count // CHUNK)):
            rng = np.random.default_rng(np.random.SeedSequence([seed, code, chunk]))
            keep = min(CHUNK, count - chunk * CHUNK)
            chunk_images, chunk_attributes, chunk_captions = self.render_chunk(
                rng,
                count=CHUNK,
                resolution=resolution,
                shift_attributes=shift_attributes,
                shift_texture=shift_texture,
            )
            images.append(chunk_images[:keep])
            captions.extend(chunk_captions[:keep])
            for name, parts in attributes.items():
                parts.append(chunk_attributes[name][:keep])
        empty = np.zeros((0, 3, resolution, resolution), dtype=np.uint8)
        pixels = np.concatenate(images) if images else empty
        gray = {"channels": 1, "grayscale": "itu-r-601-luma"} if self.config.grayscale else {}
        return ImageSplit(
            dataset=self.name,
            split=split,
            ids=[f"{self.id_prefix}-{split}-s{seed}-{i:07d}" for i in range(count)],
            images=luma_gray(pixels) if self.config.grayscale else pixels,
            captions=captions,
            attributes={
                k: (np.concatenate(v) if v else np.zeros(0, np.int64)).astype(np.int64)
                for k, v in attributes.items()
            },
            attribute_schema=self.attribute_schema(),
            info={
                "source": self.name,
                "resolution": resolution,
                "seed": seed,
                "shift": self.config.shift,
                "attribute_shift": shift_attributes,
                "texture_family": "B" if shift_texture else "A",
                "resize_mode": "rendered",
                **gray,
            },
        )

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "shift": self.config.shift,
            "shift_description": self.shift_doc,
            "default_sizes": {s: self.default_size(s) for s in SPLITS},
        }
