"""dpsgd-full-finetune: the same AR family, DP-finetuned on all scales."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from isoeps.accountants import PrivacyBudget, default_delta, epsilon
from isoeps.datasets import load_split
from isoeps.methods.base import MethodContext
from isoeps.methods.dpsgd_full_finetune import DPSGDFullFinetune
from isoeps.methods.wavelet_two_stage import WaveletTwoStage
from isoeps.privacy.guard import PrivateData
from isoeps.testing import tiny_config

TINY = tiny_config("dpsgd-full-finetune")


def _ctx() -> MethodContext:
    return MethodContext(seed=0, show_progress=False, logger=logging.getLogger("test.ar"))


def test_full_finetune_trains_every_scale_from_the_shared_public_model(tmp_path) -> None:
    public = load_split("synthetic-faces", "public", resolution=32, n=100, seed=0)
    private = load_split("synthetic-faces", "private", resolution=32, n=150, seed=0)
    # One public pretraining serves both methods (same family cache key, same files).
    source = WaveletTwoStage(TINY, ctx=_ctx())
    source.pretrain_public(public)
    source.save_public(tmp_path)
    method = DPSGDFullFinetune(TINY, ctx=_ctx())
    method.load_public(tmp_path)
    before = {k: v.clone() for k, v in method.public_model.state_dict().items()}

    delta = default_delta(len(private))
    guard = PrivateData(private, seed=2)
    method.fit(guard, PrivacyBudget.private(2.0, delta))
    assert epsilon(guard.ledger, delta=delta, accountant="prv") <= 2.0
    assert method.train_report.plan.steps == 2
    tuned = method.model.state_dict()
    # all scales' heads moved (the budget is spent on every scale)
    for key in ("head.0.weight", "head.1.weight", "head.2.weight"):
        assert not torch.equal(tuned[key], before[key]), key
    assert torch.equal(method.public_model.state_dict()["head.2.weight"], before["head.2.weight"])

    samples = method.sample(["The man has a beard."], 3)
    assert samples.images.shape == (3, 3, 32, 32) and samples.images.dtype == np.uint8


def test_full_finetune_has_no_stage_two_fields() -> None:
    with pytest.raises(ValueError, match="coarse_scales"):
        DPSGDFullFinetune({"coarse_scales": 1}, ctx=_ctx())


def test_from_scratch_the_ar_model_starts_at_its_seeded_init(tmp_path) -> None:
    """``pretrain_steps: 0``: no public AR training (the tokenizer and SR net stay public);
    the model DP-SGD finetunes is the seeded random init, the same for every cell."""
    public = load_split("synthetic-faces", "public", resolution=32, n=100, seed=0)
    private = load_split("synthetic-faces", "private", resolution=32, n=150, seed=0)
    scratch = {**TINY, "pretrain_steps": 0}
    method = DPSGDFullFinetune(scratch, ctx=_ctx())
    method.pretrain_public(public)
    assert method.pretrain_report["ar_final_loss"] is None
    torch.manual_seed(method.config.pretrain_seed)  # as pretrain_public seeds the init
    init = method._build_model(method.tokenizer).state_dict()
    for key, value in method.public_model.state_dict().items():
        assert torch.equal(value, init[key]), key
    pretrained = DPSGDFullFinetune(TINY, ctx=_ctx())
    pretrained.pretrain_public(public)
    assert not torch.equal(
        pretrained.public_model.state_dict()["head.0.weight"], init["head.0.weight"]
    )

    delta = default_delta(len(private))
    guard = PrivateData(private, seed=2)
    method.fit(guard, PrivacyBudget.private(2.0, delta))
    assert epsilon(guard.ledger, delta=delta, accountant="prv") <= 2.0
    assert not torch.equal(method.model.state_dict()["head.0.weight"], init["head.0.weight"])
