"""The torch Haar DWT (:mod:`isoeps.ops.haar`) against PyWavelets, band by band, 3 levels.

Convention (haar.py's docstring): ``haar_dwt2(x, L)`` returns exactly pywt's
``wavedec2(x, "haar", level=L, axes=(-2, -1))`` list ``[cA_L, (cH_L, cV_L, cD_L), ...,
(cH_1, cV_1, cD_1)]``, with pywt's orthonormal scaling (1/2 per 2D level) and signs, so no
remapping is needed: band k of level l is compared with band k of level l. ``cH`` is the
detail across rows (high-pass along H, low-pass along W), ``cV`` across columns, ``cD`` both.
For haar (filter length 2) on even lengths every pywt signal-extension mode gives the same
coefficients; ``periodization`` is the one that never pads, and ``symmetric`` (pywt's
default) is checked too.
"""

from __future__ import annotations

import numpy as np
import pytest
import pywt
import torch

from isoeps.ops.haar import haar_dwt2, haar_idwt2

LEVELS = 3
BANDS = ("cH", "cV", "cD")
# (batch, channels, H, W): square power-of-two and rectangular, both divisible by 2**LEVELS.
SHAPES = [(2, 3, 32, 32), (1, 4, 16, 40)]


def random_images(shape: tuple[int, ...], seed: int) -> np.ndarray:
    # Non-negative pixels plus structure along each axis, so that cH, cV and cD differ clearly.
    rng = np.random.default_rng(seed)
    h, w = shape[-2:]
    ramp = np.linspace(0, 3, h)[:, None] * np.cos(np.linspace(0, 5, w))[None, :]
    return rng.uniform(0, 1, size=shape) + ramp


def named_bands(coefficients) -> dict[str, np.ndarray]:
    """``{"cA3": ..., "cH3": ..., ..., "cD1": ...}`` from a wavedec2-ordered list."""
    out = {f"cA{LEVELS}": np.asarray(coefficients[0])}
    for position, details in enumerate(coefficients[1:]):
        level = LEVELS - position  # coarsest first
        assert len(details) == 3
        for band, value in zip(BANDS, details):
            out[f"{band}{level}"] = np.asarray(value)
    return out


def to_numpy(coefficients) -> list:
    return [coefficients[0].numpy(), *(tuple(t.numpy() for t in d) for d in coefficients[1:])]


def to_torch(coefficients) -> list:
    return [
        torch.from_numpy(np.ascontiguousarray(coefficients[0])),
        *(tuple(torch.from_numpy(np.ascontiguousarray(t)) for t in d) for d in coefficients[1:]),
    ]


def assert_same_bands(got: dict, expected: dict, *, rtol: float, atol: float) -> None:
    assert list(got) == list(expected)
    for name, value in expected.items():
        assert got[name].shape == value.shape, name
        np.testing.assert_allclose(got[name], value, rtol=rtol, atol=atol, err_msg=name)


def pywt_reference(x: np.ndarray, mode: str) -> list:
    return pywt.wavedec2(x, "haar", mode=mode, level=LEVELS, axes=(-2, -1))


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("mode", ["periodization", "symmetric"])
def test_forward_matches_wavedec2_on_every_band(shape, mode) -> None:
    x = random_images(shape, seed=sum(shape))
    expected = named_bands(pywt_reference(x, mode))
    got = named_bands(to_numpy(haar_dwt2(torch.from_numpy(x), LEVELS)))
    # Shapes: level l bands are (B, C, H / 2^l, W / 2^l).
    for level in range(1, LEVELS + 1):
        size = (shape[-2] >> level, shape[-1] >> level)
        assert all(got[f"{b}{level}"].shape == (*shape[:2], *size) for b in BANDS)
    assert_same_bands(got, expected, rtol=1e-12, atol=1e-12)


def test_forward_float32_and_energy() -> None:
    x = random_images((3, 2, 16, 16), seed=5)
    got = named_bands(to_numpy(haar_dwt2(torch.from_numpy(x).float(), LEVELS)))
    expected = named_bands(pywt_reference(x, "periodization"))
    assert all(v.dtype == np.float32 for v in got.values())
    assert_same_bands(got, expected, rtol=1e-5, atol=1e-5)
    energy = sum(float(np.square(v.astype(np.float64)).sum()) for v in got.values())
    assert energy == pytest.approx(float(np.square(x).sum()), rel=1e-5)  # orthonormal


def test_the_comparison_catches_swapped_or_negated_bands() -> None:
    # On this input every detail band is far from its neighbours and from its own negation, so
    # an LH/HL swap, a D-band swap or a sign flip in haar.py would fail the test above.
    x = random_images(SHAPES[0], seed=1)
    bands = named_bands(pywt_reference(x, "periodization"))
    for level in range(1, LEVELS + 1):
        h, v, d = (bands[f"{b}{level}"] for b in BANDS)
        scale = max(np.abs(h).max(), np.abs(v).max(), np.abs(d).max())
        for first, second in ((h, v), (h, d), (v, d), (h, -h), (v, -v), (d, -d)):
            assert np.abs(first - second).max() > 1e-3 * scale


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_inverse_matches_waverec2_on_arbitrary_coefficients(shape) -> None:
    # Random coefficients (not those of any image), so every band's synthesis is tested on its
    # own: a wrong sign or a swapped band in haar_idwt2 changes the reconstruction.
    template = pywt_reference(np.zeros(shape), "periodization")
    rng = np.random.default_rng(len(shape) + shape[-1])
    coefficients = [
        rng.normal(size=template[0].shape),
        *(tuple(rng.normal(size=t.shape) for t in d) for d in template[1:]),
    ]
    expected = pywt.waverec2(coefficients, "haar", mode="periodization", axes=(-2, -1))
    got = haar_idwt2(to_torch(coefficients)).numpy()
    assert got.shape == expected.shape == shape
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    # One band at a time: each level's H, V and D synthesis must match pywt's on its own.
    for position in range(1, LEVELS + 1):
        for k, band in enumerate(BANDS):
            single = [np.zeros_like(template[0])]
            single += [tuple(np.zeros_like(t) for t in d) for d in template[1:]]
            details = list(single[position])
            details[k] = coefficients[position][k]
            single[position] = tuple(details)
            expected = pywt.waverec2(single, "haar", mode="periodization", axes=(-2, -1))
            got = haar_idwt2(to_torch(single)).numpy()
            level = LEVELS + 1 - position
            np.testing.assert_allclose(got, expected, atol=1e-12, err_msg=f"{band}{level}")


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_round_trip_through_both_libraries(shape) -> None:
    x = random_images(shape, seed=7)
    ours = haar_dwt2(torch.from_numpy(x), LEVELS)
    # isoeps forward -> pywt inverse, and pywt forward -> isoeps inverse, both give x back.
    np.testing.assert_allclose(
        pywt.waverec2(to_numpy(ours), "haar", mode="periodization", axes=(-2, -1)), x, atol=1e-12
    )
    theirs = to_torch(pywt_reference(x, "periodization"))
    np.testing.assert_allclose(haar_idwt2(theirs).numpy(), x, atol=1e-12)
    np.testing.assert_allclose(haar_idwt2(ours).numpy(), x, atol=1e-12)
