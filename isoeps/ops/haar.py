"""Batched, differentiable multi-level 2D Haar DWT in pure torch, matching pywt.

:func:`haar_dwt2` returns coefficients in pywt ``wavedec2(x, "haar", level=L)`` order:
``[cA_L, (cH_L, cV_L, cD_L), ..., (cH_1, cV_1, cD_1)]``, with the orthonormal scaling pywt
uses (so energy is preserved). Works on any leading batch/channel dims; the last two dims
must be divisible by ``2 ** levels``.
"""

from __future__ import annotations

import torch

DetailBands = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
Coefficients = list  # [Tensor, DetailBands, DetailBands, ...]


def check_divisible(height: int, width: int, levels: int) -> None:
    """Raise a clear error when an image size cannot be decomposed ``levels`` times.

    Args:
        height: the image height, in pixels.
        width: the image width, in pixels.
        levels: the number of decomposition levels.

    Raises:
        ValueError: ``levels`` < 1, or a side is not divisible by ``2^levels``.
    """
    if levels < 1:
        raise ValueError(f"wavelet levels must be >= 1, got {levels}")
    factor = 2**levels
    if height % factor or width % factor:
        raise ValueError(
            f"image size {height}x{width} is not divisible by 2^levels = {factor} "
            f"(levels={levels}); choose a resolution that is a multiple of {factor}"
        )


def haar_dwt2_single(x: torch.Tensor) -> tuple[torch.Tensor, DetailBands]:
    """One level: ``x[..., H, W]`` -> ``(cA, (cH, cV, cD))``, each ``[..., H/2, W/2]``."""
    a = x[..., 0::2, 0::2]
    b = x[..., 0::2, 1::2]
    c = x[..., 1::2, 0::2]
    d = x[..., 1::2, 1::2]
    approx = (a + b + c + d) / 2
    horizontal = (a + b - c - d) / 2
    vertical = (a - b + c - d) / 2
    diagonal = (a - b - c + d) / 2
    return approx, (horizontal, vertical, diagonal)


def haar_idwt2_single(approx: torch.Tensor, details: DetailBands) -> torch.Tensor:
    """Inverse of :func:`haar_dwt2_single`.

    Args:
        approx: the approximation band ``(..., h, w)``.
        details: the (horizontal, vertical, diagonal) bands, each shaped as ``approx``.

    Returns:
        The image, ``(..., 2h, 2w)``.
    """
    horizontal, vertical, diagonal = details
    a = (approx + horizontal + vertical + diagonal) / 2
    b = (approx + horizontal - vertical - diagonal) / 2
    c = (approx - horizontal + vertical - diagonal) / 2
    d = (approx - horizontal - vertical + diagonal) / 2
    out = approx.new_empty(*approx.shape[:-2], approx.shape[-2] * 2, approx.shape[-1] * 2)
    out[..., 0::2, 0::2] = a
    out[..., 0::2, 1::2] = b
    out[..., 1::2, 0::2] = c
    out[..., 1::2, 1::2] = d
    return out


def haar_dwt2(x: torch.Tensor, levels: int) -> Coefficients:
    """Multi-level decomposition in pywt ``wavedec2`` order (coarsest first).

    Args:
        x: the image tensor ``(..., H, W)``.
        levels: the number of levels; ``H`` and ``W`` must be divisible by ``2^levels``.

    Returns:
        ``[approx, details_coarsest, ..., details_finest]``; each details entry is the
        (horizontal, vertical, diagonal) bands of its level.

    Raises:
        ValueError: ``levels`` < 1, or the size is not divisible by ``2^levels``.
    """
    check_divisible(x.shape[-2], x.shape[-1], levels)
    details: list[DetailBands] = []
    approx = x
    for _ in range(levels):
        approx, level_details = haar_dwt2_single(approx)
        details.append(level_details)
    return [approx, *reversed(details)]


def haar_idwt2(coefficients: Coefficients) -> torch.Tensor:
    """Inverse of :func:`haar_dwt2` (pywt ``waverec2`` for haar)."""
    approx = coefficients[0]
    for details in coefficients[1:]:
        approx = haar_idwt2_single(approx, details)
    return approx
