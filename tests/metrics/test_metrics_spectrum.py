"""Frequency fidelity: spectra and Haar band energies behave as they should."""

from __future__ import annotations

import numpy as np
import pytest
import pywt
from metrics_fixtures import shape_split, textured_images

from isoeps.metrics.base import MetricInputs
from isoeps.metrics.spectrum import SpectrumMetric, band_energies, radial_profile, spectrum_distance


def test_band_energies_match_pywt() -> None:
    images = textured_images(3)
    ours = band_energies(images, levels=2)
    coeffs = pywt.wavedec2(images.astype(np.float64) / 255, "haar", level=2, axes=(-2, -1))
    assert ours["LL2"] == pytest.approx((coeffs[0] ** 2).mean(), rel=1e-10)
    assert ours["D1"] == pytest.approx((coeffs[2][2] ** 2).mean(), rel=1e-10)
    assert ours["H2"] == pytest.approx((coeffs[1][0] ** 2).mean(), rel=1e-10)


def test_white_noise_has_a_flat_spectrum() -> None:
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, size=(16, 3, 32, 32), dtype=np.uint8)
    profile = np.log10(radial_profile(noise))
    assert profile.std() < 0.1


def test_blur_increases_both_errors() -> None:
    from scipy.ndimage import gaussian_filter

    real = textured_images(16, seed=0)
    fake = textured_images(16, seed=1)
    blurred = np.clip(gaussian_filter(fake.astype(float), sigma=(0, 0, 1.5, 1.5)), 0, 255).astype(
        np.uint8
    )
    reference = shape_split(16).__class__(
        dataset="t",
        split="reference",
        ids=[str(i) for i in range(16)],
        images=real,
        captions=[["x"]] * 16,
    )
    metric = SpectrumMetric()
    sharp = {
        v.name: v
        for v in metric.evaluate(MetricInputs(fake=fake, fake_captions=[], reference=reference))
    }
    soft = {
        v.name: v
        for v in metric.evaluate(MetricInputs(fake=blurred, fake_captions=[], reference=reference))
    }
    assert soft["spectrum_distance"].value > 2 * sharp["spectrum_distance"].value
    assert soft["wavelet_band_error"].value > 2 * sharp["wavelet_band_error"].value
    assert soft["wavelet_band_error"].details["log10_energy_ratio"]["D1"] < -0.3
    assert spectrum_distance(real, real)[0] == 0.0


def test_mismatched_sizes_are_resized_and_recorded() -> None:
    reference = shape_split(8, size=32, split="reference")
    fake = shape_split(8, size=64, seed=3).images
    values = SpectrumMetric().evaluate(
        MetricInputs(fake=fake, fake_captions=[], reference=reference)
    )
    assert values[0].details["resized"]["from"] == [64, 64] and values[0].details["resized"][
        "to"
    ] == [32, 32]
