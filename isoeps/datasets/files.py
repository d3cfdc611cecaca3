"""Decoding image files into uint8 tensors, with the unreadable-image policy and the cache.

Real datasets list their images in a ``FileItem`` list; :func:`load_images` decodes them with
the named resize policy (through the preprocessed-tensor cache) and applies ``on_error``:
``fail`` (default) raises a :class:`DataError` naming the file; ``skip`` drops the file, logs
the count and reports it in ``ImageSplit.info["skipped"]``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, UnidentifiedImageError
from pydantic import Field, field_validator

from isoeps.datasets import tensor_cache
from isoeps.datasets.base import ImageSplit
from isoeps.datasets.source import SourceConfig
from isoeps.errors import DataError
from isoeps.log import get_logger
from isoeps.ops.images import DEFAULT_RESIZE, RESIZE_POLICIES, pil_to_chw, resize_pil

log = get_logger(__name__)
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"})


class FileSourceConfig(SourceConfig):
    """Options shared by the sources that read image files."""

    root: str | None = Field(None, description="dataset root (else the source's env var)")
    resize: str = Field(DEFAULT_RESIZE, description=f"resize policy: {', '.join(RESIZE_POLICIES)}")
    on_error: Literal["fail", "skip"] = Field("fail", description="unreadable image: fail or skip")
    cache: bool = Field(True, description="cache decoded tensors under the isoeps cache")
    cache_key: Literal["stat", "content"] = Field(
        "stat",
        description="how image files enter the cache key: size+mtime (fast) or their bytes",
    )
    workers: int = Field(4, ge=1, description="decoding threads")

    @field_validator("resize")
    @classmethod
    def _known_resize(cls, value: str) -> str:
        if value not in RESIZE_POLICIES:
            raise ValueError(f"unknown resize mode {value!r}; known: {', '.join(RESIZE_POLICIES)}")
        return value


@dataclass
class FileItem:
    id: str
    path: Path
    captions: list[str]
    attributes: dict[str, int] = field(default_factory=dict)


def decode(path: Path, *, resolution: int, mode: str, listed_in: str) -> np.ndarray:
    """One file as uint8 (3, R, R); a DataError names the file and what is wrong with it.

    Args:
        path: the image file.
        resolution: side length R of the output, in pixels.
        mode: the resize policy.
        listed_in: where the file was listed, for the error message.

    Returns:
        uint8 ``(3, R, R)``.

    Raises:
        DataError: the file is missing, not an image, or corrupt.
    """
    try:
        with Image.open(path) as image:
            image.load()
            return pil_to_chw(resize_pil(image, resolution=resolution, mode=mode))
    except FileNotFoundError:
        raise DataError(f"image {path} (listed in {listed_in}) does not exist") from None
    except UnidentifiedImageError:
        raise DataError(f"{path} is not an image PIL can read (listed in {listed_in})") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"{path} is corrupt or truncated: {exc}") from None


def _decode_all(
    items: Sequence[FileItem],
    *,
    resolution: int,
    mode: str,
    on_error: str,
    listed_in: str,
    workers: int,
) -> tuple[np.ndarray, list[int], list[str]]:
    def one(item: FileItem) -> np.ndarray | str:
        try:
            return decode(item.path, resolution=resolution, mode=mode, listed_in=listed_in)
        except DataError as exc:
            if on_error == "fail":
                raise
            return str(exc)

    with ThreadPoolExecutor(max_workers=max(1, min(workers, os.cpu_count() or 1))) as pool:
        results = list(pool.map(one, items))
    kept = [i for i, r in enumerate(results) if not isinstance(r, str)]
    skipped = [r for r in results if isinstance(r, str)]
    images = (
        np.stack([results[i] for i in kept])
        if kept
        else np.zeros((0, 3, resolution, resolution), np.uint8)
    )
    return images, kept, skipped


def load_images(
    *,
    dataset: str,
    split: str,
    items: Sequence[FileItem],
    resolution: int,
    config: FileSourceConfig,
    listed_in: str,
    key_files: Sequence[Path] = (),
    schema: dict[str, list[str]] | None = None,
    info: dict | None = None,
) -> ImageSplit:
    """Decode ``items`` (through the cache) into an ImageSplit.

    ``key_files`` (annotation and caption files) enter the cache key by content, so editing a
    caption or the split lists never serves stale tensors.

    Args:
        dataset: the dataset's name (in the cache key and the split).
        split: the split's name (likewise).
        items: the files to decode, with their ids, captions and attributes.
        resolution: the side of the square output images.
        config: the resize and unreadable-image policies, the cache and the decoding threads.
        listed_in: the file that lists ``items``, named in decoding errors.
        key_files: files whose content enters the cache key.
        schema: attribute name -> value names, when the items carry attributes.
        info: extra entries for ``ImageSplit.info``.

    Returns:
        The decoded split, without the skipped files under ``on_error="skip"``.
    """
    images, kept, skipped = _decode_cached(
        dataset=dataset,
        split=split,
        items=items,
        resolution=resolution,
        config=config,
        listed_in=listed_in,
        key_files=key_files,
    )
    if skipped:
        log.warning(
            "%s/%s: skipped %d unreadable image(s), e.g. %s",
            dataset,
            split,
            len(skipped),
            skipped[0],
        )
    return _image_split(
        dataset,
        split,
        [items[i] for i in kept],
        images,
        resolution=resolution,
        config=config,
        skipped=skipped,
        schema=schema,
        info=info,
    )


def _image_split(
    dataset: str,
    split: str,
    chosen: list[FileItem],
    images: np.ndarray,
    *,
    resolution: int,
    config: FileSourceConfig,
    skipped: list[str],
    schema: dict[str, list[str]] | None,
    info: dict | None,
) -> ImageSplit:
    """The ImageSplit of the decoded ``chosen`` items, with the skipped files in its info."""
    attributes = None
    if schema:
        attributes = {
            name: np.array([it.attributes[name] for it in chosen], dtype=np.int64)
            for name in schema
        }
    return ImageSplit(
        dataset=dataset,
        split=split,
        ids=[it.id for it in chosen],
        images=images,
        captions=[list(it.captions) for it in chosen],
        attributes=attributes,
        attribute_schema=schema,
        info={
            **(info or {}),
            "resolution": resolution,
            "resize_mode": config.resize,
            "skipped": len(skipped),
            "skipped_examples": skipped[:5],
        },
    )


def _decode_cached(
    *,
    dataset: str,
    split: str,
    items: Sequence[FileItem],
    resolution: int,
    config: FileSourceConfig,
    listed_in: str,
    key_files: Sequence[Path],
) -> tuple[np.ndarray, list[int], list[str]]:
    """Decode ``items`` through the tensor cache (when ``config.cache``): the images, the
    positions of the items kept and the messages of those skipped."""

    def build() -> tuple[np.ndarray, list[int], list[str]]:
        return _decode_all(
            items,
            resolution=resolution,
            mode=config.resize,
            on_error=config.on_error,
            listed_in=listed_in,
            workers=config.workers,
        )

    if not config.cache:
        return build()
    return tensor_cache.get_or_build(
        dataset=dataset,
        split=split,
        ids=[it.id for it in items],
        files=[it.path for it in items],
        key_files=key_files,
        resolution=resolution,
        resize=config.resize,
        on_error=config.on_error,
        file_key=config.cache_key,
        build=build,
    )


def read_text(path: Path, *, what: str) -> str:
    """A UTF-8 text file; a DataError names it when it is missing or unreadable.

    Args:
        path: the file.
        what: what the file is, for the error message (e.g. ``"caption file"``).

    Returns:
        Its text.

    Raises:
        DataError: the file is missing or cannot be read as UTF-8.
    """
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{what} {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{what} {path} cannot be read: {exc}") from None
