"""Frequency fidelity: radially averaged power spectra and per-wavelet-band energies.

``spectrum_distance``: images are converted to luminance in [0, 1]; each image's 2D power
spectrum ``|FFT|^2`` (mean removed) is averaged over the set and binned by integer radial
frequency (DC excluded). The value is the RMS difference of the two log10 profiles, in
decades: 0.1 means the spectra differ by ~26% on average across frequencies.

``wavelet_band_error``: the multi-level Haar DWT (``isoeps.ops.haar``) of each set; the mean
energy (mean square coefficient) of every detail band, and the value is the mean over bands of
``|log10(E_fake / E_real)|``. Per-band figures are in details. Both need equal resolutions:
samples are resized to the reference resolution when they differ (recorded).
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from isoeps.metrics.base import Metric, MetricInputs, MetricOptions, MetricValue
from isoeps.metrics.common import value
from isoeps.metrics.preprocess import check_images, match_resolution
from isoeps.ops.haar import haar_dwt2

_LUMA = np.array([0.299, 0.587, 0.114])
_EPS = 1e-12


def _luminance(images: np.ndarray) -> np.ndarray:
    return np.tensordot(images.astype(np.float64) / 255.0, _LUMA, axes=([1], [0]))


def radial_profile(images: np.ndarray) -> np.ndarray:
    """Mean radially averaged power spectrum of uint8 NCHW images (bins 1..H/2)."""
    gray = _luminance(check_images(images, what="spectrum input"))
    gray = gray - gray.mean(axis=(1, 2), keepdims=True)
    power = (np.abs(np.fft.fftshift(np.fft.fft2(gray), axes=(1, 2))) ** 2).mean(axis=0)
    h, w = power.shape
    yy, xx = np.indices(power.shape)
    radius = np.round(np.hypot(yy - h // 2, xx - w // 2)).astype(int)
    limit = min(h, w) // 2
    sums = np.bincount(radius.ravel(), weights=power.ravel())
    counts = np.bincount(radius.ravel())
    return sums[1 : limit + 1] / counts[1 : limit + 1]


def spectrum_distance(fake: np.ndarray, real: np.ndarray) -> tuple[float, dict[str, list[float]]]:
    """RMS log10 difference of the radial power spectra, and both profiles.

    Args:
        fake: uint8 ``(N, 3, H, W)`` samples.
        real: uint8 ``(M, 3, H, W)`` reference images.

    Returns:
        ``(distance, profiles)``: the RMS difference and both log10 profiles.
    """
    p_fake, p_real = radial_profile(fake), radial_profile(real)
    diff = np.log10(p_fake + _EPS) - np.log10(p_real + _EPS)
    return float(np.sqrt((diff**2).mean())), {
        "log10_profile_fake": np.log10(p_fake + _EPS).round(4).tolist(),
        "log10_profile_real": np.log10(p_real + _EPS).round(4).tolist(),
    }


def default_levels(size: int, *, max_levels: int = 3) -> int:
    """The most Haar levels (up to ``max_levels``) that divide ``size``.

    Args:
        size: the image side, in pixels.
        max_levels: the most levels returned.

    Returns:
        The number of levels; each leaves a band at least 2 pixels wide.

    Raises:
        ValueError: ``size`` is odd (or below 4).
    """
    levels = 0
    while levels < max_levels and size % (2 ** (levels + 1)) == 0 and size >> (levels + 1) >= 2:
        levels += 1
    if levels == 0:
        raise ValueError(f"wavelet band error: image size {size} is not divisible by 2")
    return levels


def band_energies(images: np.ndarray, *, levels: int, device: str = "cpu") -> dict[str, float]:
    """Mean energy of each Haar band: ``LL{L}`` and ``{H,V,D}{level}`` (level 1 = finest).

    Args:
        images: uint8 ``(N, 3, H, W)``, scaled to [0, 1].
        levels: how many Haar levels.
        device: where the transform runs.

    Returns:
        ``{band: mean squared coefficient}``.

    Raises:
        ValueError: ``images`` is invalid, or its size is not divisible by ``2^levels``.
    """
    import torch

    x = torch.tensor(check_images(images, what="wavelet input"), device=device).double() / 255.0
    coefficients = haar_dwt2(x, levels)
    energies = {f"LL{levels}": float((coefficients[0] ** 2).mean())}
    for offset, bands in enumerate(coefficients[1:]):
        level = levels - offset
        for label, band in zip("HVD", bands):
            energies[f"{label}{level}"] = float((band**2).mean())
    return energies


def wavelet_band_error(
    fake: np.ndarray, real: np.ndarray, *, levels: int, device: str = "cpu"
) -> tuple[float, dict[str, float]]:
    """Mean |log10 energy ratio| over the detail bands, and the per-band log ratios.

    Args:
        fake: uint8 ``(N, 3, H, W)`` samples.
        real: uint8 ``(M, 3, H, W)`` reference images, of the same size.
        levels: how many Haar levels.
        device: where the transform runs.

    Returns:
        ``(error, ratios)``: the mean over detail bands, and ``{band: log10 ratio}`` for every
        band including ``LL``.
    """
    e_fake = band_energies(fake, levels=levels, device=device)
    e_real = band_energies(real, levels=levels, device=device)
    ratios = {
        band: float(np.log10((e_fake[band] + _EPS) / (e_real[band] + _EPS))) for band in e_real
    }
    details = [abs(r) for band, r in ratios.items() if not band.startswith("LL")]
    return float(np.mean(details)), ratios


class SpectrumMetric(Metric):
    """Radial power spectrum distance and wavelet band energy error against the reference."""

    name = "spectrum"

    class Options(MetricOptions):
        """``levels``: Haar levels of the band error (default: from the resolution, at most 3)."""

        levels: int | None = Field(default=None, ge=1)
        device: str | None = None

    options: Options

    def evaluate(self, inputs: MetricInputs) -> list[MetricValue]:
        real = inputs.reference.images
        fake, resized = match_resolution(
            check_images(inputs.fake, what="samples"), size=real.shape[-1], what="samples"
        )
        levels = self.options.levels or default_levels(real.shape[-1])
        distance, profiles = spectrum_distance(fake, real)
        band_error, ratios = wavelet_band_error(
            fake, real, levels=levels, device=self.options.device or inputs.device
        )
        common = {"n_real": len(real), "space": "pixels", **resized}
        return [
            value(
                "spectrum_distance",
                distance,
                higher_is_better=False,
                n=len(fake),
                details={**common, "unit": "log10 power, RMS over radial bins", **profiles},
            ),
            value(
                "wavelet_band_error",
                band_error,
                higher_is_better=False,
                n=len(fake),
                details={
                    **common,
                    "levels": levels,
                    "unit": "mean |log10 energy ratio| over detail bands",
                    "log10_energy_ratio": ratios,
                },
            ),
        ]
