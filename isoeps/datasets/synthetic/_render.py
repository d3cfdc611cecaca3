"""Vectorised rasterisation for the procedural datasets: coordinates, soft shapes, textures.

Every function works on a whole chunk of images at once. Coordinates run over ``[-1, 1]`` on
both axes (``v`` downwards), so a scene is defined independently of the resolution and the same
parameters render at 32 or 64 pixels. Edges are anti-aliased over one pixel, and textures are
defined in PIXEL units, so every resolution gets real detail up to its Nyquist frequency.
"""

from __future__ import annotations

import numpy as np

F = np.float32


def coords(resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates ``(u, v)``, each ``(1, H, W)`` float32 in ``(-1, 1)``."""
    axis = (np.arange(resolution, dtype=F) + F(0.5)) / F(resolution) * F(2) - F(1)
    v, u = np.meshgrid(axis, axis, indexing="ij")
    return u[None], v[None]


def col(values: np.ndarray) -> np.ndarray:
    """A per-image scalar ``(N,)`` as ``(N, 1, 1)`` for broadcasting against ``(N, H, W)``."""
    return np.asarray(values, dtype=F)[:, None, None]


def soft(distance: np.ndarray, resolution: int) -> np.ndarray:
    """Coverage in [0, 1] from a signed distance (negative inside), anti-aliased over 1 pixel.

    Args:
        distance: signed distances, in coordinate units.
        resolution: the image side in pixels (one pixel is ``2 / resolution`` units).

    Returns:
        float32 coverage, shaped as ``distance``.
    """
    pixel = F(2.0 / resolution)
    return np.clip(F(0.5) - distance / pixel, F(0), F(1))


def ellipse(u, v, cx, cy, rx, ry) -> np.ndarray:
    """Approximate signed distance to an axis-aligned ellipse (exact for circles).

    Args:
        u: horizontal coordinates, as :func:`coords` returns.
        v: vertical coordinates (downwards).
        cx: the centre's ``u``, per image ``(N, 1, 1)`` or scalar.
        cy: the centre's ``v``.
        rx: the horizontal semi-axis, in coordinate units.
        ry: the vertical semi-axis.

    Returns:
        The distance field (negative inside), broadcast over the inputs.
    """
    radius = np.sqrt(((u - cx) / rx) ** 2 + ((v - cy) / ry) ** 2)
    return (radius - F(1)) * np.minimum(rx, ry)


def box(u, v, cx, cy, hx, hy) -> np.ndarray:
    """Signed distance to an axis-aligned rectangle with half-sizes ``hx``, ``hy``.

    Args:
        u: horizontal coordinates, as :func:`coords` returns.
        v: vertical coordinates (downwards).
        cx: the centre's ``u``, per image ``(N, 1, 1)`` or scalar.
        cy: the centre's ``v``.
        hx: the horizontal half-size, in coordinate units.
        hy: the vertical half-size.

    Returns:
        The distance field (negative inside), broadcast over the inputs.
    """
    dx = np.abs(u - cx) - hx
    dy = np.abs(v - cy) - hy
    outside = np.sqrt(np.maximum(dx, 0) ** 2 + np.maximum(dy, 0) ** 2)
    return outside + np.minimum(np.maximum(dx, dy), 0)


def triangle(u, v, cx, cy, r) -> np.ndarray:
    """Signed distance (a good approximation) to an upward equilateral triangle of circumradius r.

    Args:
        u: horizontal coordinates, as :func:`coords` returns.
        v: vertical coordinates (downwards).
        cx: the centre's ``u``, per image ``(N, 1, 1)`` or scalar.
        cy: the centre's ``v``.
        r: the circumradius, in coordinate units.

    Returns:
        The distance field (negative inside), broadcast over the inputs.
    """
    x, y = u - cx, -(v - cy)
    k = F(np.sqrt(3.0))
    # Three half-planes at 120 degrees; the max of their distances is the polygon's.
    d1 = -y - r * F(0.5)
    d2 = (k * x + y) * F(0.5) - r * F(0.5)
    d3 = (-k * x + y) * F(0.5) - r * F(0.5)
    return np.maximum(np.maximum(d1, d2), d3)


def paint(canvas: np.ndarray, mask: np.ndarray, color: np.ndarray) -> None:
    """Alpha-blend ``color`` ((N, 3) or (N, 3, H, W)) into ``canvas`` (N, 3, H, W) in place.

    Args:
        canvas: float images ``(N, 3, H, W)``, changed in place.
        mask: coverage in [0, 1], ``(N, H, W)``.
        color: the colour to blend in, per image or per pixel.
    """
    # Blend only inside the bounding box of the mask over the chunk: most parts are small.
    rows = np.flatnonzero(mask.any(axis=(0, 2)))
    cols = np.flatnonzero(mask.any(axis=(0, 1)))
    if rows.size == 0:
        return
    ys, xs = slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)
    m = mask[:, None, ys, xs]
    target = canvas[:, :, ys, xs]
    color = color[:, :, None, None] if color.ndim == 2 else color[:, :, ys, xs]
    target += (color - target) * m


def shade(color: np.ndarray, texture: np.ndarray, amount: float) -> np.ndarray:
    """Per-pixel colour: ``color`` (N, 3) modulated by ``texture`` (N, H, W) of unit scale.

    Args:
        color: float ``(N, 3)`` base colours.
        texture: ``(N, H, W)``, roughly unit std.
        amount: the relative modulation depth.

    Returns:
        float ``(N, 3, H, W)``.
    """
    return color[:, :, None, None] * (F(1) + F(amount) * texture[:, None])


def bandpass_noise(
    rng: np.random.Generator,
    n: int,
    resolution: int,
    *,
    center: float,
    width: float,
    anisotropy: float = 1.0,
) -> np.ndarray:
    """Gaussian noise band-passed around ``center`` cycles/pixel, unit std per image.

    ``anisotropy`` > 1 stretches the passband along the vertical frequency axis, which gives
    horizontally elongated structures (used by the scan-line skin family).

    Args:
        rng: the generator of the white noise.
        n: how many images.
        resolution: the image side, in pixels.
        center: the passband's centre frequency, in cycles per pixel.
        width: its Gaussian width, in cycles per pixel.
        anisotropy: see above; 1 for isotropic.

    Returns:
        float32 ``(n, resolution, resolution)``, zero mean per image.
    """
    white = rng.standard_normal((n, resolution, resolution), dtype=F)
    spectrum = np.fft.rfft2(white)
    fy = np.fft.fftfreq(resolution).astype(F)[:, None]
    fx = np.fft.rfftfreq(resolution).astype(F)[None, :]
    radius = np.sqrt((fx * anisotropy) ** 2 + (fy / anisotropy) ** 2)
    spectrum *= np.exp(-0.5 * ((radius - center) / width) ** 2)
    noise = np.fft.irfft2(spectrum, s=(resolution, resolution)).astype(F)
    noise -= noise.mean(axis=(1, 2), keepdims=True)
    noise /= noise.std(axis=(1, 2), keepdims=True) + F(1e-6)
    return noise


def lowpass_noise(
    rng: np.random.Generator, n: int, resolution: int, *, cycles: float
) -> np.ndarray:
    """Smooth noise with features about ``1 / cycles`` of the image wide, unit std.

    A coarse random grid, upsampled with cubic B-spline weights: smooth, and much cheaper than
    filtering full-resolution noise.

    Args:
        rng: the generator of the coarse grid.
        n: how many images.
        resolution: the image side, in pixels.
        cycles: about how many features span the image.

    Returns:
        float32 ``(n, resolution, resolution)``, zero mean per image.
    """
    knots = int(np.ceil(2 * cycles)) + 4
    coarse = rng.standard_normal((n, knots, knots), dtype=F)
    weights = _bspline_matrix(resolution, knots)
    field = np.einsum("yk,nkl,xl->nyx", weights, coarse, weights, optimize=True).astype(F)
    field -= field.mean(axis=(1, 2), keepdims=True)
    field /= field.std(axis=(1, 2), keepdims=True) + F(1e-6)
    return field


def _bspline_matrix(resolution: int, knots: int) -> np.ndarray:
    """(resolution, knots) cubic B-spline interpolation weights over the inner knot span."""
    t = (np.arange(resolution) + 0.5) / resolution * (knots - 3) + 1.0
    k = np.arange(knots)[None, :]
    x = np.abs(t[:, None] - k)
    w = np.where(x < 1, 2 / 3 - x**2 + x**3 / 2, np.where(x < 2, (2 - x) ** 3 / 6, 0.0))
    return w.astype(F)


# --- texture families -------------------------------------------------------------------------
# Family "A" (private, reference, eval) and family "B" (public under a texture shift) differ in
# orientation and spectrum, so a model of B's fine detail does not already know A's.


def strands(rng, n, resolution, u, v, cx, cy, grain: np.ndarray) -> np.ndarray:
    """Hair strands radiating from a crown point: fine oriented stripes with wavy phase, plus
    ``grain`` (a fine-noise field the caller already has).

    Args:
        rng: the generator of the wobble and phases.
        n: how many images.
        resolution: the image side, in pixels.
        u: horizontal coordinates, as :func:`coords` returns.
        v: vertical coordinates.
        cx: the crown's ``u``, per image ``(N, 1, 1)``.
        cy: the crown's ``v``.
        grain: the fine-noise field ``(n, H, W)`` added.

    Returns:
        float32 ``(n, H, W)``.
    """
    theta = np.arctan2(v - cy, u - cx)
    count = F(0.7 * resolution * np.pi)  # about 2.5 px between strands at mid radius
    wobble = lowpass_noise(rng, n, resolution, cycles=3.0)
    jitter = col(rng.uniform(0, 2 * np.pi, n))
    stripes = np.sin(count * theta + F(2.5) * wobble + jitter)
    return (F(0.8) * stripes + F(0.35) * grain).astype(F)


def curls(rng, n, resolution) -> np.ndarray:
    """Curly hair: isotropic blobs at ~4 px, hard-thresholded into ringlets.

    Args:
        rng: the generator of the noise.
        n: how many images.
        resolution: the image side, in pixels.

    Returns:
        float32 ``(n, H, W)`` in (-1, 1).
    """
    noise = bandpass_noise(rng, n, resolution, center=0.22, width=0.04)
    return np.tanh(F(2.5) * noise)


def pores(rng, n, resolution) -> np.ndarray:
    """Skin pores: isotropic near-Nyquist grain.

    Args:
        rng: the generator of the noise.
        n: how many images.
        resolution: the image side, in pixels.

    Returns:
        float32 ``(n, H, W)``, unit std.
    """
    return bandpass_noise(rng, n, resolution, center=0.38, width=0.1)


def scanlines(rng, n, resolution) -> np.ndarray:
    """Skin with horizontal streaks: energy concentrated on vertical frequencies.

    Args:
        rng: the generator of the noise.
        n: how many images.
        resolution: the image side, in pixels.

    Returns:
        float32 ``(n, H, W)``, unit std.
    """
    return bandpass_noise(rng, n, resolution, center=0.3, width=0.06, anisotropy=4.0)


def weave(rng, n, resolution, u, v, grain: np.ndarray) -> np.ndarray:
    """Cloth weave: a diagonal cross-hatch near 4 px period, with random phase, plus ``grain``
    (a fine-noise field; callers pass one they already made for a surface drawn on top).

    Args:
        rng: the generator of the phases.
        n: how many images.
        resolution: the image side, in pixels.
        u: horizontal coordinates, as :func:`coords` returns.
        v: vertical coordinates.
        grain: the fine-noise field ``(n, H, W)`` added.

    Returns:
        float32 ``(n, H, W)``.
    """
    k = F(np.pi * resolution / 4.0)
    phase = col(rng.uniform(0, 2 * np.pi, n))
    hatch = np.sin(k * (u + v) + phase) * np.sin(k * (u - v) + phase)
    return (F(1.2) * hatch + F(0.4) * grain).astype(F)


def speckle(rng, n, resolution) -> np.ndarray:
    """Speckle: sparse bright and dark dots on a mid-frequency mottle.

    Args:
        rng: the generator of the noise.
        n: how many images.
        resolution: the image side, in pixels.

    Returns:
        float32 ``(n, H, W)``.
    """
    white = rng.standard_normal((n, resolution, resolution), dtype=F)
    dots = np.sign(white) * (np.abs(white) > F(1.8))
    return (
        F(0.9) * dots + F(0.5) * bandpass_noise(rng, n, resolution, center=0.12, width=0.04)
    ).astype(F)
