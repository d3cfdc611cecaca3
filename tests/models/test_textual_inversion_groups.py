"""Grouped textual inversion (DPAgg-TI with g > 1): one vector per group, learned on the
group's images only; singleton groups reproduce per-image inversion."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from isoeps.models.diffusion import DiffusionSpec, TextDiffusion
from isoeps.models.text_encoders import PLACEHOLDER
from isoeps.models.textual_inversion import InversionSettings, invert_tokens

SETTINGS = InversionSettings(steps=2, learning_rate=0.05, chunk_size=4)


@pytest.fixture(scope="module")
def model() -> TextDiffusion:
    return TextDiffusion.build(DiffusionSpec(resolution=8, block_out_channels=(16, 32)), seed=0)


def _images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3, 8, 8), dtype=np.uint8)


def _invert(model: TextDiffusion, images: np.ndarray, groups=None) -> torch.Tensor:
    return invert_tokens(
        model,
        images=images,
        prompts=[f"a photo of {PLACEHOLDER}"] * len(images),
        init=model.text_encoder.token_embedding("photo"),
        settings=SETTINGS,
        generators=[torch.Generator().manual_seed(i) for i in range(len(images))],
        groups=groups,
    )


def test_singleton_groups_match_per_image_inversion(model: TextDiffusion) -> None:
    images = _images(5)
    torch.testing.assert_close(_invert(model, images, groups=np.arange(5)), _invert(model, images))


def test_one_vector_per_group_depending_on_its_images_only(model: TextDiffusion) -> None:
    groups = np.array([0, 1, 0, 1, 2])
    images = _images(5)
    vectors = _invert(model, images, groups=groups)
    assert vectors.shape == (3, 384)
    changed = images.copy()
    changed[1] = 255 - changed[1]  # an image of group 1
    again = _invert(model, changed, groups=groups)
    torch.testing.assert_close(again[[0, 2]], vectors[[0, 2]])
    assert not torch.allclose(again[1], vectors[1])


def test_a_records_vector_does_not_depend_on_its_batch_mates(model: TextDiffusion) -> None:
    # Each image's timesteps and noise come from its own generator (the guard keys it to the
    # record), so inverting image 2 alone or beside others gives the same vector.
    images = _images(4)
    seeds = [11, 12, 13, 14]

    def invert(index: list[int]) -> torch.Tensor:
        return invert_tokens(
            model,
            images=images[index],
            prompts=[f"a photo of {PLACEHOLDER}"] * len(index),
            init=model.text_encoder.token_embedding("photo"),
            settings=SETTINGS,
            generators=[torch.Generator().manual_seed(seeds[i]) for i in index],
        )

    torch.testing.assert_close(invert([0, 1, 2, 3])[2], invert([2])[0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(invert([3, 2])[1], invert([2])[0], atol=1e-5, rtol=1e-4)


def test_group_labels_are_checked(model: TextDiffusion) -> None:
    with pytest.raises(ValueError, match="every value in 0..2"):
        _invert(model, _images(3), groups=np.array([0, 2, 2]))
    with pytest.raises(ValueError, match="group labels"):
        _invert(model, _images(3), groups=np.array([0, 1]))
