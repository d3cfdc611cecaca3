"""DP-LDM end to end on tiny data: the contract, a ledger at or under the target, only the
attention modules trained (the autoencoder and every other UNet weight unchanged), and the
Stable Diffusion folder path on a tiny random pipeline saved with ``save_pretrained``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from isoeps.accountants import PrivacyBudget, SubsampledGaussian, default_delta, epsilon
from isoeps.errors import ConfigError
from isoeps.methods.base import MethodContext
from isoeps.methods.dp_ldm import DPLDM
from isoeps.privacy.guard import PrivateData
from isoeps.testing import MethodTesterMixin, tiny_config, tiny_split

TINY = tiny_config("dp-ldm")


class TestDPLDMContract(MethodTesterMixin):
    method_class = DPLDM
    config = TINY
    resolution = 8
    num_private = 40


def _method(seed: int = 0, **overrides) -> DPLDM:
    return DPLDM({**TINY, **overrides}, ctx=MethodContext(seed=seed, show_progress=False))


@pytest.fixture(scope="module")
def public_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    method = _method()
    method.pretrain_public(tiny_split("public", n=16, resolution=8))
    directory = tmp_path_factory.mktemp("dp-ldm-public")
    method.save_public(directory)
    return directory


def _loaded(public_dir: Path, **overrides) -> DPLDM:
    method = _method(**overrides)
    method.load_public(public_dir)
    return method


def test_the_unet_denoises_latents_of_the_public_autoencoder(public_dir) -> None:
    model = _loaded(public_dir).public_model
    assert model.vae is not None
    assert model.unet.config.in_channels == 4 and model.unet.config.sample_size == 4
    assert model.vae.config.scaling_factor != 1.0  # set from the public latents
    assert not model.scheduler.config.clip_sample


@pytest.mark.parametrize("target", [1.0, 10.0])
def test_dp_finetunes_only_the_attention_modules_at_or_under_the_target(public_dir, target):
    method = _loaded(public_dir)
    before_unet = {n: p.clone() for n, p in method.public_model.unet.named_parameters()}
    before_vae = {n: p.clone() for n, p in method.public_model.vae.named_parameters()}
    private = tiny_split("private", n=40, resolution=8)
    delta = default_delta(len(private))
    guard = PrivateData(private, mode="private", seed=3)
    report = method.fit(guard, PrivacyBudget.private(target, delta))
    (entry,) = guard.ledger.entries
    assert isinstance(entry, SubsampledGaussian) and entry.steps == 2
    assert target * 0.97 <= epsilon(guard.ledger, delta, "prv") <= target
    trained = set(DPLDM.trainable(method.model.unet))
    assert trained and all(".attn1." in n or ".attn2." in n for n in trained)
    assert any(n.endswith("attn2.to_k.weight") for n in trained)  # the condition's projection
    for name, value in method.model.unet.named_parameters():
        changed = not torch.equal(value, before_unet[name])
        assert changed == (name in trained), name
    for name, value in method.model.vae.named_parameters():
        assert torch.equal(value, before_vae[name]), name
    # fit worked on a copy: the public model is unchanged.
    for name, value in method.public_model.unet.named_parameters():
        assert torch.equal(value, before_unet[name]), name
    assert report.details["trained_parameters"] == sum(
        p.numel() for n, p in method.model.unet.named_parameters() if n in trained
    )


def test_ema_zero_keeps_the_last_iterate_and_ema_moves_less(public_dir) -> None:
    private = tiny_split("private", n=40, resolution=8)
    moved = {}
    for decay in (0.0, 0.9):
        method = _loaded(public_dir, ema_decay=decay)
        start = {n: p.clone() for n, p in method.public_model.unet.named_parameters()}
        method.fit(PrivateData(private, mode="inf", seed=3), PrivacyBudget.non_private())
        moved[decay] = sum(
            float((p.detach() - start[n]).norm()) for n, p in method.model.unet.named_parameters()
        )
    assert 0 < moved[0.9] < moved[0.0]


def test_a_folder_without_the_public_models_names_what_is_missing(tmp_path) -> None:
    from isoeps.errors import MissingWeightsError

    with pytest.raises(MissingWeightsError, match="dp_ldm.json"):
        _method().load_public(tmp_path)


def test_plan_and_errors() -> None:
    plan = _method().plan(PrivacyBudget.private(1.0, 1e-5), 20000)
    assert plan["steps"] == 2 and 0.97 <= plan["epsilon"]["prv"] <= 1.0
    assert _method().plan(PrivacyBudget.public_only(), 20000) is None
    with pytest.raises(ConfigError, match="before pretrain_public"):
        _method().fit(None, PrivacyBudget.public_only())
    with pytest.raises(ConfigError, match="sample before fit"):
        _method().sample(["x"], 1)


def test_a_local_stable_diffusion_folder_is_finetuned_the_same_way(
    tiny_stable_diffusion, tmp_path
) -> None:
    method = _method(pretrained_path=str(tiny_stable_diffusion), resolution=8)
    method.pretrain_public(tiny_split("public", n=4, resolution=8))
    method.save_public(tmp_path)
    method.load_public(tmp_path)
    assert not (tmp_path / "diffusion").exists()  # the folder is read where it is
    private = tiny_split("private", n=40, resolution=8)
    guard = PrivateData(private, mode="private", seed=1)
    method.fit(guard, PrivacyBudget.private(10.0, default_delta(len(private))))
    samples = method.sample(["a red square"], 2)
    assert samples.images.shape == (2, 3, 8, 8)
    assert np.isfinite(samples.images).all()
