"""Named image resize modes for backbones and pixel metrics.

Every resize is recorded by name next to the numbers it produced, so two results computed
with different filters are never silently compared. ``"clean"`` is clean-fid's FID resize
(PIL bicubic on float32 channels, no quantisation), taken from clean-fid itself.
"""

from __future__ import annotations

import numpy as np

from isoeps.log import get_logger

log = get_logger(__name__)

#: The resize modes this module implements, by the name stored with results.
RESIZE_MODES: tuple[str, ...] = ("clean", "torch-bilinear-aa", "torch-bicubic-aa")


def check_images(images: np.ndarray, *, what: str) -> np.ndarray:
    """Validate a uint8 ``(N, 3, H, W)`` batch, naming ``what`` in the error.

    Args:
        images: the batch.
        what: names it in errors.

    Returns:
        ``images``, unchanged.

    Raises:
        TypeError: ``images`` is not a numpy array.
        ValueError: it is not uint8 ``(N, 3, H, W)``, or it is empty.
    """
    if not isinstance(images, np.ndarray):
        raise TypeError(f"{what}: expected a numpy array, got {type(images).__name__}")
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(
            f"{what}: images must be uint8 (N, 3, H, W), got {images.dtype} {images.shape}"
        )
    if images.shape[0] == 0:
        raise ValueError(f"{what}: no images (empty set)")
    return images


def resize_clean(images: np.ndarray, *, size: int) -> np.ndarray:
    """clean-fid's "clean" resize: uint8 NCHW -> float32 NCHW in [0, 255] at ``size``.

    Args:
        images: uint8 ``(N, 3, H, W)``.
        size: the output side, in pixels.

    Returns:
        float32 ``(N, 3, size, size)``.
    """
    from cleanfid.resize import make_resizer

    resizer = make_resizer("PIL", False, "bicubic", (size, size))
    out = np.empty((images.shape[0], 3, size, size), dtype=np.float32)
    for i, image in enumerate(images):
        out[i] = resizer(np.ascontiguousarray(image.transpose(1, 2, 0))).transpose(2, 0, 1)
    return out


def resize_torch(images, *, size: int, mode: str):
    """Antialiased torch resize of a float tensor ``(N, C, H, W)``; identity at equal size.

    Args:
        images: float tensor ``(N, C, H, W)``.
        size: the output side, in pixels.
        mode: ``torch-bilinear-aa`` or ``torch-bicubic-aa``.

    Returns:
        ``(N, C, size, size)``; ``images`` itself at equal size.
    """
    import torch.nn.functional as F

    if images.shape[-2:] == (size, size):
        return images
    filter_name = {"torch-bilinear-aa": "bilinear", "torch-bicubic-aa": "bicubic"}[mode]
    return F.interpolate(images, size=(size, size), mode=filter_name, antialias=True)


def match_resolution(
    images: np.ndarray, *, size: int, what: str, mode: str = "torch-bicubic-aa"
) -> tuple[np.ndarray, dict[str, object]]:
    """Resize uint8 images to ``size`` when needed, and say so (never silently).

    Returns the images and a record for the metric's details: empty when nothing was done,
    else ``{"resized": {"what", "from", "to", "mode"}}``.

    Args:
        images: uint8 ``(N, 3, H, W)``.
        size: the target side, in pixels.
        what: names the images in the warning and the record.
        mode: the torch resize mode (see :func:`resize_torch`).

    Returns:
        ``(images, record)``; the images are uint8 ``(N, 3, size, size)``.
    """
    if images.shape[-1] == size and images.shape[-2] == size:
        return images, {}
    import torch

    log.warning("%s: resizing %s images to %dx%d (%s)", what, images.shape[-2:], size, size, mode)
    tensor = torch.tensor(images).float()
    resized = resize_torch(tensor, size=size, mode=mode).round().clamp(0, 255).to(torch.uint8)
    record = {
        "resized": {
            "what": what,
            "from": [int(images.shape[-2]), int(images.shape[-1])],
            "to": [size, size],
            "mode": mode,
        }
    }
    return resized.numpy(), record
