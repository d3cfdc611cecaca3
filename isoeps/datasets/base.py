"""Records and splits: the data types every other layer consumes.

One record is one image (the privacy unit) with all its captions, a stable id and, when the
source has them, attributes. A split holds its records as one uint8 array so that 20k+
private images stay cheap; indexing yields :class:`Record`, and :meth:`ImageSplit.take`
gathers a batch (the ``PrivateData`` guard uses it for Poisson batches).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SPLITS: tuple[str, ...] = ("public", "private", "reference", "eval")


@dataclass(frozen=True)
class Record:
    id: str
    image: np.ndarray  # uint8 (3, H, W)
    captions: tuple[str, ...]
    attributes: dict[str, int] | None = None


@dataclass
class ImageSplit:
    """One split of one dataset at one resolution.

    ``images`` is uint8 ``(N, 3, H, W)``; ``captions[i]`` lists record i's captions (>= 1);
    ``attributes`` maps an attribute name to an int array ``(N,)`` of value indices into
    ``attribute_schema[name]`` (e.g. ``{"smiling": ["no", "yes"]}``); ``info`` carries
    provenance (source, root, resolution, resize mode, shift, ...).
    """

    dataset: str
    split: str
    ids: list[str]
    images: np.ndarray
    captions: list[list[str]]
    attributes: dict[str, np.ndarray] | None = None
    attribute_schema: dict[str, list[str]] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.ids)
        if self.images.dtype != np.uint8 or self.images.ndim != 4 or self.images.shape[1] != 3:
            raise ValueError(
                f"{self.dataset}/{self.split}: images must be uint8 (N, 3, H, W), "
                f"got {self.images.dtype} {self.images.shape}"
            )
        if self.images.shape[0] != n or len(self.captions) != n:
            raise ValueError(
                f"{self.dataset}/{self.split}: {n} ids, {self.images.shape[0]} images, "
                f"{len(self.captions)} caption lists"
            )
        for name, values in (self.attributes or {}).items():
            if len(values) != n:
                raise ValueError(
                    f"{self.dataset}/{self.split}: attribute {name!r} has wrong length"
                )

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def resolution(self) -> int:
        return int(self.images.shape[-1])

    def __getitem__(self, index: int) -> Record:
        attributes = (
            {name: int(values[index]) for name, values in self.attributes.items()}
            if self.attributes
            else None
        )
        return Record(
            id=self.ids[index],
            image=self.images[index],
            captions=tuple(self.captions[index]),
            attributes=attributes,
        )

    def take(self, indices: Sequence[int] | np.ndarray) -> ImageSplit:
        """The sub-split at ``indices`` (same dataset, split and schema)."""
        idx = np.asarray(indices, dtype=np.int64)
        return ImageSplit(
            dataset=self.dataset,
            split=self.split,
            ids=[self.ids[i] for i in idx],
            images=self.images[idx],
            captions=[self.captions[i] for i in idx],
            attributes=(
                {name: values[idx] for name, values in self.attributes.items()}
                if self.attributes
                else None
            ),
            attribute_schema=self.attribute_schema,
            info=dict(self.info),
        )

    def pixel_hashes(self) -> list[str]:
        """A sha1 per image, for the cross-split overlap check."""
        return [hashlib.sha1(image.tobytes()).hexdigest() for image in self.images]

    def fingerprint(self) -> str:
        """A content hash of ids, pixels and captions: identifies this exact data."""
        digest = hashlib.sha256()
        digest.update(f"{self.dataset}/{self.split}/{self.images.shape}".encode())
        for record_id in self.ids:
            digest.update(record_id.encode() + b"\0")
        digest.update(np.ascontiguousarray(self.images).tobytes())
        for captions in self.captions:
            digest.update("\x1f".join(captions).encode() + b"\0")
        return digest.hexdigest()[:16]
