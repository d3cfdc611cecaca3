"""Image conversions and the named resize policies (numpy + PIL; torch tensors where noted).

Layout conventions: isoeps stores images as uint8 ``(N, 3, H, W)`` (CHW). Models see floats in
``[-1, 1]`` ("signed") or ``[0, 1]`` ("unit"). :func:`unit_to_uint8` accepts a numpy array or a
torch tensor and returns the same kind, so no caller needs to know which it holds.

A resize policy is named, so results can record exactly how real images were prepared:
``center-crop-bicubic`` (the default) crops the central square, then resizes with PIL bicubic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class ResizePolicy:
    name: str
    center_crop: bool
    resample: int  # a PIL.Image.Resampling value


RESIZE_POLICIES: dict[str, ResizePolicy] = {
    policy.name: policy
    for policy in (
        ResizePolicy("center-crop-bicubic", True, Image.Resampling.BICUBIC),
        ResizePolicy("center-crop-lanczos", True, Image.Resampling.LANCZOS),
        ResizePolicy("center-crop-bilinear", True, Image.Resampling.BILINEAR),
        ResizePolicy("center-crop-box", True, Image.Resampling.BOX),
        ResizePolicy("stretch-bicubic", False, Image.Resampling.BICUBIC),
    )
}
DEFAULT_RESIZE = "center-crop-bicubic"


def resize_policy(name: str) -> ResizePolicy:
    """The policy called ``name``; a ValueError lists the known names."""
    try:
        return RESIZE_POLICIES[name]
    except KeyError:
        raise ValueError(
            f"unknown resize mode {name!r}; known: {', '.join(RESIZE_POLICIES)}"
        ) from None


def center_crop_box(width: int, height: int) -> tuple[int, int, int, int]:
    """The (left, upper, right, lower) box of the largest centred square.

    Args:
        width: the image width, in pixels.
        height: the image height, in pixels.

    Returns:
        ``(left, upper, right, lower)``, in pixels.
    """
    side = min(width, height)
    left = (width - side) // 2
    upper = (height - side) // 2
    return left, upper, left + side, upper + side


def resize_pil(image: Image.Image, *, resolution: int, mode: str = DEFAULT_RESIZE) -> Image.Image:
    """Convert to RGB, apply the named policy, and return a ``resolution``-square PIL image.

    Args:
        image: the image.
        resolution: the output side, in pixels; >= 1.
        mode: the resize policy's name.

    Returns:
        The RGB image, ``resolution`` x ``resolution``.

    Raises:
        ValueError: an unknown policy, or ``resolution`` < 1.
    """
    policy = resize_policy(mode)
    if resolution < 1:
        raise ValueError(f"resolution must be >= 1, got {resolution}")
    image = image.convert("RGB")
    if policy.center_crop and image.size[0] != image.size[1]:
        # Crop first, then resize: the filter never reads pixels outside the crop.
        image = image.crop(center_crop_box(*image.size))
    if image.size == (resolution, resolution):
        return image
    return image.resize((resolution, resolution), resample=policy.resample)


def pil_to_chw(image: Image.Image) -> np.ndarray:
    """An RGB PIL image as uint8 ``(3, H, W)``."""
    return np.asarray(image.convert("RGB"), dtype=np.uint8).transpose(2, 0, 1).copy()


def chw_to_pil(image: np.ndarray) -> Image.Image:
    """A uint8 ``(3, H, W)`` array as an RGB PIL image."""
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[0] != 3:
        raise ValueError(f"expected uint8 (3, H, W), got {array.dtype} {array.shape}")
    return Image.fromarray(np.ascontiguousarray(array.transpose(1, 2, 0)), mode="RGB")


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


def unit_to_uint8(images: Any) -> Any:
    """Floats in ``[0, 1]`` -> uint8, rounded and clipped (numpy array or torch tensor)."""
    if _is_torch(images):
        import torch

        return (images.detach() * 255.0).round().clamp(0, 255).to(torch.uint8)
    return np.clip(np.rint(np.asarray(images, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)
