"""Samples brought to the sensitive data's resolution, as DPImageBench's evaluator does.

DPImageBench ``F.interpolate``s samples of another resolution to the sensitive one in the
default (nearest) mode. A source padded to meet a generator's divisibility (Fashion-MNIST's
28x28 padded to 32x32, ``ImageSplit.info["padding"]``) is cropped back instead: the crop
inverts the padding exactly, where nearest resizing would shrink the content.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from isoeps.datasets.dpimagebench import dpimagebench_gray
from isoeps.metrics.preprocess import check_images

PROTOCOL = "dpimagebench"


def sensitive_geometry(split: Any) -> tuple[int, int]:
    """``(native size, padding)`` of a split: the size DPImageBench evaluates at.

    Args:
        split: an :class:`~isoeps.datasets.base.ImageSplit`.

    Returns:
        The side of the images without the padding, and the padding.
    """
    return split.native_resolution, split.padding


def to_sensitive_resolution(
    images: np.ndarray, *, size: int, padding: int = 0, what: str = "samples"
) -> tuple[np.ndarray, dict[str, object]]:
    """uint8 ``(N, 3, H, W)`` images at ``size`` x ``size``, and what was done to them.

    Args:
        images: uint8 NCHW images.
        size: the sensitive data's native side.
        padding: the border the source added to reach the generator's size; images of side
            ``size + 2 * padding`` lose exactly that border.
        what: names the images in errors.

    Returns:
        The images, and a record for the value's details (``{}`` when nothing was done).
    """
    import torch
    import torch.nn.functional as F

    images = check_images(images, what=what)
    side = images.shape[-1]
    if images.shape[-2] != side:
        raise ValueError(f"{what}: images must be square, got {images.shape[-2:]}")
    if side == size:
        return images, {}
    if padding and side == size + 2 * padding:
        cropped = images[:, :, padding : padding + size, padding : padding + size]
        return np.ascontiguousarray(cropped), {
            "to_sensitive_resolution": {"from": side, "to": size, "mode": f"crop-{padding}"}
        }
    resized = F.interpolate(torch.from_numpy(images).float(), size=(size, size), mode="nearest")
    return resized.to(torch.uint8).numpy(), {
        "to_sensitive_resolution": {"from": side, "to": size, "mode": "nearest"}
    }


def truncate_unit(x: np.ndarray) -> np.ndarray:
    """float images in [0, 1] -> uint8 as ``ToPILImage`` does: ``x.mul(255).byte()``.

    Args:
        x: float32 images in [0, 1].

    Returns:
        uint8 images, truncated (not rounded), in float32 arithmetic as torch's.
    """
    return (np.asarray(x, dtype=np.float32) * np.float32(255.0)).astype(np.uint8)


def is_grayscale(images: np.ndarray) -> bool:
    """Whether every image of a uint8 ``(N, 3, H, W)`` batch has three equal channels."""
    return bool(
        np.array_equal(images[:, 0], images[:, 1]) and np.array_equal(images[:, 0], images[:, 2])
    )


def to_sensitive_channels(
    images: np.ndarray, *, gray: bool, what: str = "samples"
) -> tuple[np.ndarray, dict[str, object]]:
    """Samples as DPImageBench reads them for a grayscale (or colour) sensitive set.

    A uint8 image round-trips ``x / 255`` -> ``ToPILImage`` exactly, so gray samples (three
    equal channels: a one-channel gen.npz, replicated) and any samples of a colour sensitive
    set are returned as they are. Colour samples of a gray sensitive set go through
    ``evaluator.py``'s conversion, ``0.299 c2 + 0.587 c1 + 0.114 c0`` on ``x = u8 / 255`` in
    float32, then the ``ToPILImage`` truncation, replicated to three channels.

    Args:
        images: uint8 ``(N, 3, H, W)``.
        gray: whether the sensitive data is grayscale.
        what: names the images in errors.

    Returns:
        The images, and a record for the value's details (``{}`` when nothing was done).
    """
    images = check_images(images, what=what)
    if not gray or is_grayscale(images):
        return images, {}
    luma = dpimagebench_gray(images.astype(np.float32) / np.float32(255.0))
    out = np.repeat(truncate_unit(np.clip(luma, 0.0, 1.0)), 3, axis=1)
    return out, {"to_sensitive_channels": {"from": 3, "to": 1, "weights": "dpimagebench"}}
