"""The wavelet SR net: shapes, untrained = piecewise-constant upsampling, training helps."""

from __future__ import annotations

import numpy as np
import torch

from isoeps.models.ar_pretrain import train_sr
from isoeps.models.sr_net import WaveletSR
from isoeps.models.tokenizer import to_float
from isoeps.ops.haar import haar_dwt2


def _images(n: int, seed: int) -> np.ndarray:
    """Smooth random blobs: the details are predictable from the coarse image."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:16, 0:16] / 15.0
    out = np.zeros((n, 3, 16, 16))
    for i in range(n):
        cx, cy, r = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7), rng.uniform(0.15, 0.3)
        blob = ((xx - cx) ** 2 + (yy - cy) ** 2 < r * r).astype(float)
        out[i] = rng.random(3)[:, None, None] * blob + 0.2 * rng.random(3)[:, None, None]
    return (np.clip(out, 0, 1) * 255).astype(np.uint8)


def test_untrained_net_upsamples_piecewise_constant() -> None:
    net = WaveletSR(levels=2, width=16, blocks=1)
    coarse = torch.rand(2, 3, 4, 4) * 2 - 1
    full = net.upsample(coarse, from_level=2)
    assert full.shape == (2, 3, 16, 16)
    # zero-initialised output layers predict zero details: each pixel is its block's value
    expected = coarse.repeat_interleave(4, dim=2).repeat_interleave(4, dim=3)
    torch.testing.assert_close(full, expected, atol=1e-6, rtol=0)


def test_training_on_public_images_improves_reconstruction() -> None:
    images = _images(64, seed=0)
    held_out = to_float(_images(16, seed=1))
    coarse = haar_dwt2(held_out, 2)[0] / 4

    def error(net: WaveletSR) -> float:
        return float(((net.upsample(coarse, from_level=2) - held_out) ** 2).mean())

    net = WaveletSR(levels=2, width=16, blocks=1)
    before = error(net)
    torch.manual_seed(0)
    losses = train_sr(
        net,
        images=images,
        steps=40,
        batch_size=16,
        learning_rate=3e-3,
        seed=0,
        show_progress=False,
    )
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    assert error(net) < before
    assert net.band_std.shape == (2, 9) and bool((net.band_std > 0).all())
