"""The diffusion loss in the DP-SGD engine's ``LossFn`` shape: draws come from the engine's
per-record streams in ``collate``, so the loss draws nothing and every backend agrees."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from isoeps.accountants import PrivacyBudget
from isoeps.models.diffusion import DiffusionSpec, TextDiffusion, denoising_loss
from isoeps.privacy.config import DPSGDConfig
from isoeps.privacy.engine import train_dp_sgd
from isoeps.privacy.guard import PrivateData
from isoeps.privacy.per_sample import create_backend
from isoeps.testing import tiny_split

SPEC = DiffusionSpec(resolution=8, block_out_channels=(16, 16), norm_num_groups=8)


def _model() -> TextDiffusion:
    from diffusers.models.attention_processor import AttnProcessor

    model = TextDiffusion.build(SPEC, seed=0)
    # matmul + softmax attention: scaled_dot_product_attention has no CPU vmap backward rule
    model.unet.set_attn_processor(AttnProcessor())
    return model


def _rngs(ids: list[str]) -> list[np.random.Generator]:
    """One stream per record, keyed to its id (as the engine's are)."""
    return [np.random.default_rng([7, int(i.rsplit("-", 1)[-1])]) for i in ids]


@pytest.fixture(scope="module")
def model() -> TextDiffusion:
    return _model()


def test_a_records_draws_do_not_depend_on_its_batch(model) -> None:
    records = tiny_split("private", n=3, resolution=8)
    collate = model.dp_collate()
    both = collate(records, _rngs(records.ids))
    alone = collate(records.take([2]), _rngs(records.ids[2:]))
    for key in ("noisy", "timesteps", "noise", "hidden"):
        assert torch.equal(both[key][2:], alone[key]), key


def test_denoising_loss_matches_the_models_own_loss(model) -> None:
    records = tiny_split("private", n=4, resolution=8)
    batch = model.dp_collate()(records, _rngs(records.ids))
    with torch.no_grad():
        ours = denoising_loss(model.unet, batch)
        noisy = model.scheduler.add_noise(
            model.to_model_space(records.images), batch["noise"], batch["timesteps"]
        )
        assert torch.equal(noisy, batch["noisy"])
        prediction = model.unet(
            noisy,
            batch["timesteps"],
            encoder_hidden_states=batch["hidden"],
            encoder_attention_mask=batch.get("mask"),
        ).sample
    expected = (prediction - batch["noise"]).pow(2).flatten(1).mean(dim=1)
    assert ours.shape == (4,)
    torch.testing.assert_close(ours, expected)


def test_functorch_and_opacus_clip_the_same_sum(model) -> None:
    records = tiny_split("private", n=4, resolution=8)
    batch = model.dp_collate(cond_drop_prob=0.5)(records, _rngs(records.ids))
    params = {n: p for n, p in model.unet.named_parameters() if n.startswith("conv_out")}
    for p in model.unet.parameters():
        p.requires_grad_(False)
    for p in params.values():
        p.requires_grad_(True)
    sums = {}
    for name in ("functorch", "opacus"):
        backend = create_backend(name, module=model.unet, loss_fn=denoising_loss, params=params)
        sums[name] = backend.clipped_sum(batch, clip_norm=1e-3)
        backend.close()
    for key in params:
        torch.testing.assert_close(
            sums["functorch"][key], sums["opacus"][key], rtol=1e-4, atol=1e-7
        )


def test_dp_sgd_on_the_unet_is_reproducible_and_on_the_ledger() -> None:
    def run() -> tuple[torch.Tensor, PrivateData]:
        model = _model()
        guard = PrivateData(tiny_split("private", n=48, resolution=8), seed=1)
        train_dp_sgd(
            guard=guard,
            module=model.unet,
            loss_fn=denoising_loss,
            collate=model.dp_collate(cond_drop_prob=0.1),
            config=DPSGDConfig(steps=2, expected_batch_size=8, learning_rate=1e-3),
            budget=PrivacyBudget.private(5.0, 1e-3),
            show_progress=False,
        )
        flat = torch.cat([p.detach().flatten() for p in model.unet.parameters()])
        return flat, guard

    first, guard = run()
    again, _ = run()
    assert torch.equal(first, again) and guard.ledger.is_private
    (entry,) = list(guard.ledger)
    assert entry.steps == 2 and entry.note == "dp-sgd"
