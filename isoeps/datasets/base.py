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
#: Splits only some sources have: ``validation`` is the sensitive validation set that
#: DPImageBench carves out of the train file (its epoch selection reads it). A source lists
#: the splits it has in ``DatasetSource.splits``; the harness asks for these only on demand.
OPTIONAL_SPLITS: tuple[str, ...] = ("validation",)
ALL_SPLITS: tuple[str, ...] = SPLITS + OPTIONAL_SPLITS
#: Splits of sensitive records: they never share a record with another split, whatever a
#: source declares (see ``ImageSplit.shares_records_with``).
SENSITIVE_SPLITS: tuple[str, ...] = ("private", "validation")


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

    ``shares_records_with`` names the splits of the same dataset that may hold some of this
    split's very records (same id, same pixels), e.g. Fashion-MNIST's ``eval``, a half of the
    test set that ``reference`` holds whole. The cross-split check allows a shared record only
    when both splits declare each other, and never for a sensitive split
    (:data:`SENSITIVE_SPLITS`), which is refused here.
    """

    dataset: str
    split: str
    ids: list[str]
    images: np.ndarray
    captions: list[list[str]]
    attributes: dict[str, np.ndarray] | None = None
    attribute_schema: dict[str, list[str]] | None = None
    info: dict[str, Any] = field(default_factory=dict)
    shares_records_with: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.shares_records_with = tuple(self.shares_records_with)
        sensitive = {self.split, *self.shares_records_with} & set(SENSITIVE_SPLITS)
        if self.shares_records_with and sensitive:
            raise ValueError(
                f"{self.dataset}/{self.split}: shares_records_with="
                f"{list(self.shares_records_with)} involves the sensitive split(s) "
                f"{sorted(sensitive)}, which may share no record with any split"
            )
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

    @property
    def padding(self) -> int:
        """Pixels the source added on each side to reach ``resolution`` (``info["padding"]``)."""
        return int(self.info.get("padding", 0) or 0)

    @property
    def native_resolution(self) -> int:
        """The side of the source's own images, without the padding."""
        return self.resolution - 2 * self.padding

    @property
    def channels(self) -> int:
        """1 for a gray source (stored as three equal channels, ``info["channels"]``), else 3."""
        return int(self.info.get("channels", 3))

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
            shares_records_with=self.shares_records_with,
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


#: ITU-R BT.601 luma weights of (R, G, B), as PIL's ``convert("L")`` uses them.
LUMA_601: tuple[float, float, float] = (0.299, 0.587, 0.114)


def gray_to_rgb(gray: np.ndarray) -> np.ndarray:
    """uint8 ``(N, H, W)`` gray images as the split layout ``(N, 3, H, W)``, channels equal.

    Args:
        gray: uint8 gray images.

    Returns:
        A new contiguous uint8 array; a source that stores gray data this way also sets
        ``info["channels"] = 1`` so that exporters can write one channel.
    """
    gray = np.asarray(gray, dtype=np.uint8)
    return np.ascontiguousarray(np.repeat(gray[:, None], 3, axis=1))


def luma_gray(images: np.ndarray) -> np.ndarray:
    """Colour uint8 ``(N, 3, H, W)`` images turned gray (ITU-R 601 luma), three equal channels.

    Args:
        images: uint8 RGB images in the split layout.

    Returns:
        uint8 ``(N, 3, H, W)``: ``round(0.299 R + 0.587 G + 0.114 B)`` in every channel.
    """
    weights = np.asarray(LUMA_601, dtype=np.float32)[None, :, None, None]
    luma = (np.asarray(images, dtype=np.float32) * weights).sum(axis=1)
    return gray_to_rgb(np.clip(np.rint(luma), 0, 255).astype(np.uint8))
