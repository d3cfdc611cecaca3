from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from isoeps.ops.images import (
    chw_to_pil,
    pil_to_chw,
    resize_pil,
    unit_to_uint8,
)


def test_center_crop_then_pil_bicubic_matches_pil() -> None:
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (30, 50, 3), dtype=np.uint8))
    ours = pil_to_chw(resize_pil(image, resolution=12))
    expected = image.crop((10, 0, 40, 30)).resize((12, 12), Image.Resampling.BICUBIC)
    assert np.array_equal(ours, np.asarray(expected).transpose(2, 0, 1))
    stretched = resize_pil(image, resolution=12, mode="stretch-bicubic")
    assert np.array_equal(
        np.asarray(stretched), np.asarray(image.resize((12, 12), Image.Resampling.BICUBIC))
    )
    with pytest.raises(ValueError, match="center-crop-bicubic"):
        resize_pil(image, resolution=12, mode="nearest-ish")


def test_conversions_roundtrip_numpy_and_torch() -> None:
    x = np.arange(256, dtype=np.uint8).reshape(1, 1, 16, 16).repeat(3, axis=1)
    assert np.array_equal(unit_to_uint8(x.astype(np.float32) / 255.0), x)
    t = torch.from_numpy(x)
    back = unit_to_uint8(t.float() / 255.0)
    assert isinstance(back, torch.Tensor) and torch.equal(back, t)
    assert np.array_equal(pil_to_chw(chw_to_pil(x[0])), x[0])
