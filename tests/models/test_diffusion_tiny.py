"""The tiny text-conditional diffusion model and batched textual inversion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from isoeps.errors import ConfigError, MissingWeightsError
from isoeps.models.diffusion import DiffusionSpec, TextDiffusion, TrainSettings
from isoeps.models.text_encoders import PLACEHOLDER
from isoeps.models.textual_inversion import InversionSettings, invert_tokens

SPEC = DiffusionSpec(resolution=8, block_out_channels=(16, 32))


def _images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3, 8, 8), dtype=np.uint8)


@pytest.fixture(scope="module")
def model() -> TextDiffusion:
    model = TextDiffusion.build(SPEC, seed=0)
    captions = [["a red square"], ["a blue circle"], ["a green square"], ["a dark image"]]
    losses = model.train_public(
        images=_images(4),
        captions=captions,
        settings=TrainSettings(steps=3, batch_size=4, log_every=0),
        seed=0,
    )
    assert len(losses) == 3 and all(np.isfinite(losses))
    return model


def test_spec_is_checked() -> None:
    with pytest.raises(ConfigError, match="divisible"):
        DiffusionSpec(resolution=10, block_out_channels=(16, 32, 32))
    with pytest.raises(ConfigError, match="norm_num_groups"):
        DiffusionSpec(block_out_channels=(24, 32))
    with pytest.raises(ConfigError, match="attention_levels"):
        DiffusionSpec(block_out_channels=(16, 32), attention_levels=3)


def test_cross_attention_matches_the_text_encoder(model: TextDiffusion) -> None:
    assert model.unet.config.cross_attention_dim == model.text_encoder.dim == 384


def test_sample_is_uint8_and_seeded(model: TextDiffusion) -> None:
    prompts = ["a red square", "a blue circle", "a red square"]
    first = model.sample(prompts, generator=torch.Generator().manual_seed(1), steps=3)
    again = model.sample(prompts, generator=torch.Generator().manual_seed(1), steps=3)
    other = model.sample(prompts, generator=torch.Generator().manual_seed(2), steps=3)
    assert first.dtype == np.uint8 and first.shape == (3, 3, 8, 8)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_unconditional_prompts_skip_guidance_with_the_same_result(model: TextDiffusion) -> None:
    from diffusers import DDIMScheduler

    fast = model.sample(["", ""], generator=torch.Generator().manual_seed(3), steps=3)
    scheduler = DDIMScheduler.from_config(model.scheduler.config)
    scheduler.set_timesteps(3)
    hidden, mask = model.condition(["", ""])
    uncond_hidden, uncond_mask = model.condition([""])
    noise = torch.randn(model._latent_shape(2), generator=torch.Generator().manual_seed(3))
    guided = model._denoise(
        scheduler, scheduler.timesteps, noise, (hidden, mask), (uncond_hidden, uncond_mask), 3.0
    )
    assert np.abs(fast.astype(int) - guided.astype(int)).max() <= 1


def test_vary_at_full_strength_is_a_fresh_sample_and_weak_strength_stays_close(
    model: TextDiffusion,
) -> None:
    prompts = ["a red square", "a blue circle"]
    base = model.sample(prompts, generator=torch.Generator().manual_seed(1), steps=4)
    other = model.sample(prompts, generator=torch.Generator().manual_seed(2), steps=4)

    def vary(strength: float) -> np.ndarray:
        generator = torch.Generator().manual_seed(5)
        return model.vary(base, prompts, strength=strength, generator=generator, steps=4)

    weak, strong = vary(0.25), vary(1.0)
    assert weak.shape == base.shape and weak.dtype == np.uint8
    distance = lambda a, b: np.abs(a.astype(int) - b.astype(int)).mean()
    assert 0 < distance(weak, base) < distance(strong, base)
    # The input matters at partial strength: another input gives another variation.
    generator = torch.Generator().manual_seed(5)
    assert distance(weak, model.vary(other, prompts, strength=0.25, generator=generator, steps=4))
    with pytest.raises(ConfigError, match="strength"):
        model.vary(base, prompts, strength=0.0, generator=torch.Generator(), steps=4)
    with pytest.raises(ConfigError, match="2 images but 1 prompts"):
        model.vary(base, prompts[:1], strength=0.5, generator=torch.Generator(), steps=4)


def test_token_vector_changes_only_prompts_with_the_token(model: TextDiffusion) -> None:
    prompts = [f"a photo of {PLACEHOLDER}, a red square", "a red square"]
    with pytest.raises(ConfigError, match="no token vector"):
        model.sample(prompts, generator=torch.Generator().manual_seed(0), steps=2)
    outs = [
        model.sample(
            prompts,
            generator=torch.Generator().manual_seed(0),
            steps=3,
            token_vector=model.text_encoder.token_embedding(word),
        )
        for word in ("sky", "shoe")
    ]
    assert not np.array_equal(outs[0][0], outs[1][0])
    np.testing.assert_array_equal(outs[0][1], outs[1][1])


def test_save_load_round_trip(model: TextDiffusion, tmp_path: Path) -> None:
    model.save(tmp_path / "m")
    loaded = TextDiffusion.load(tmp_path / "m")
    assert loaded.spec == model.spec
    for name, value in model.unet.state_dict().items():
        torch.testing.assert_close(loaded.unet.state_dict()[name], value)
    with pytest.raises(MissingWeightsError, match=str(tmp_path / "nowhere")):
        TextDiffusion.load(tmp_path / "nowhere")


def test_per_example_losses_do_not_couple_records(model: TextDiffusion) -> None:
    prompts = [f"a photo of {PLACEHOLDER}", f"a photo of {PLACEHOLDER}, a red square"]
    vectors = torch.randn(2, 384, requires_grad=True)
    hidden, mask = model.condition(prompts, vectors)
    losses = model.per_example_loss(
        model.to_model_space(_images(2)), hidden, mask, generator=torch.Generator().manual_seed(0)
    )
    assert losses.shape == (2,)
    losses[0].backward()
    assert vectors.grad[0].abs().sum() > 0
    assert torch.all(vectors.grad[1] == 0)


def test_textual_inversion_learns_one_vector_per_image(model: TextDiffusion) -> None:
    init = model.text_encoder.token_embedding("photo")
    prompts = [f"a photo of {PLACEHOLDER}, a red square"] * 3
    vectors = invert_tokens(
        model,
        images=_images(3, seed=1),
        prompts=prompts,
        init=init,
        settings=InversionSettings(steps=3, learning_rate=0.05, chunk_size=2),
        generators=[torch.Generator().manual_seed(i) for i in range(3)],
    )
    assert vectors.shape == (3, 384)
    offsets = (vectors - init).norm(dim=1)
    assert torch.all(offsets > 0)
    assert not torch.allclose(vectors[0], vectors[1])
    assert not any(p.requires_grad for p in model.unet.parameters())
    with pytest.raises(ConfigError, match="lacks"):
        invert_tokens(
            model,
            images=_images(1),
            prompts=["no token"],
            init=init,
            settings=InversionSettings(steps=1),
            generators=[torch.Generator()],
        )
