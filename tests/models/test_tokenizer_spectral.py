"""The spectral tokenizer: geometry, exact round trip, PSNR on synthetic faces, frozen state."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from isoeps.models.ar_pretrain import fit_tokenizer
from isoeps.models.tokenizer import (
    SpectralTokenizer,
    TokenizerConfig,
    _patchify,
    to_float,
)

#: Reconstruction bars on held-out synthetic faces at 32x32 (codebook 128, 300 public images).
#: Measured ~23 dB (coarse) and ~19 dB (full); the bars leave ~1.5 dB of slack.
PSNR_BAR_COARSE = 21.5
PSNR_BAR_FULL = 17.5


def test_scales_have_equal_token_counts_and_doubling_patches() -> None:
    config = TokenizerConfig(levels=3, base_patch=1)
    tokenizer = SpectralTokenizer(config, resolution=32)
    assert tokenizer.num_scales == 4
    assert [config.patch_size(s) for s in range(4)] == [1, 1, 2, 4]
    assert [tokenizer.side(s) for s in range(4)] == [4, 4, 8, 16]
    assert tokenizer.tokens_per_scale == 16
    tokens = tokenizer.encode(torch.zeros(2, 3, 32, 32))
    assert tokens.shape == (2, 4 * 16)


def test_exact_round_trip_when_codebook_holds_every_patch() -> None:
    images = torch.rand(2, 3, 16, 16) * 2 - 1
    tokenizer = SpectralTokenizer(TokenizerConfig(codebook_size=8, base_patch=2), resolution=16)
    # 16x16, L=2: a 4x4 LL band with 2x2 patches -> 4 patches per scale and image: 8 in all.
    for scale, vectors in enumerate(tokenizer.patch_vectors(images)):
        tokenizer.codebook(scale).copy_(vectors.reshape(-1, vectors.shape[-1]))
    decoded = tokenizer.decode(tokenizer.encode(images))
    torch.testing.assert_close(decoded, images, atol=1e-5, rtol=0)
    coarse = tokenizer.decode(tokenizer.encode(images, num_scales=1))
    assert coarse.shape == (2, 3, 4, 4)
    # the LL band in pixel units is the 4x4 block mean
    torch.testing.assert_close(coarse, torch.nn.functional.avg_pool2d(images, 4), atol=1e-5, rtol=0)


def test_patchify_is_raster_order() -> None:
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    patches = _patchify(x, 2)
    assert patches[0, 0].tolist() == [0, 1, 4, 5]
    assert patches[0, 1].tolist() == [2, 3, 6, 7]


def test_psnr_on_synthetic_faces_above_bar() -> None:
    from isoeps.datasets import load_split

    public = load_split("synthetic-faces", "public", resolution=32, n=300, seed=0)
    held_out = load_split("synthetic-faces", "reference", resolution=32, n=100, seed=0)
    tokenizer, fit_psnr = fit_tokenizer(
        public, config=TokenizerConfig(codebook_size=128, kmeans_iters=8), seed=0
    )
    psnr = tokenizer.psnr_per_scale(to_float(held_out.images))
    assert set(psnr) == {"psnr_scale0", "psnr_scale1", "psnr_scale2"}
    assert psnr["psnr_scale0"] >= PSNR_BAR_COARSE, psnr
    assert psnr["psnr_scale2"] >= PSNR_BAR_FULL, psnr
    assert fit_psnr["psnr_scale0"] >= psnr["psnr_scale0"] - 3  # no wild train/test gap


def test_fit_is_deterministic_and_state_is_frozen() -> None:
    rng = np.random.default_rng(0)
    images = torch.rand(40, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    config = TokenizerConfig(codebook_size=16, kmeans_iters=3)
    first = SpectralTokenizer(config, resolution=16)
    second = SpectralTokenizer(config, resolution=16)
    first.fit(images, seed=3)
    second.fit(images, seed=3)
    for scale in range(3):
        torch.testing.assert_close(first.codebook(scale), second.codebook(scale))
    # No parameters at all (so DP-SGD cannot update it), and train mode + forward changes
    # nothing (no EMA state).
    assert list(first.parameters()) == []
    before = {k: v.clone() for k, v in first.state_dict().items()}
    first.train()
    first.encode(torch.as_tensor(rng.random((4, 3, 16, 16)), dtype=torch.float32))
    for key, value in first.state_dict().items():
        torch.testing.assert_close(value, before[key])


@pytest.mark.parametrize(
    ("levels", "base_patch", "resolution", "message"),
    [
        (3, 1, 36, r"not divisible by 2\^levels = 8"),
        (2, 3, 32, "not divisible by base_patch=3"),
    ],
)
def test_bad_resolution_errors(levels: int, base_patch: int, resolution: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SpectralTokenizer(
            TokenizerConfig(levels=levels, base_patch=base_patch), resolution=resolution
        )


def test_too_few_patches_for_codebook() -> None:
    tokenizer = SpectralTokenizer(TokenizerConfig(codebook_size=64), resolution=16)
    with pytest.raises(ValueError, match="codebook_size=64"):
        tokenizer.fit(torch.zeros(2, 3, 16, 16), seed=0)
