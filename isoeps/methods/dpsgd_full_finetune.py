"""``dpsgd-full-finetune``: the clean ablation of ``wavelet-two-stage``.

The same public spectral tokenizer and scale-causal AR transformer (the same cached public
models and the same DP-SGD step budget), but the private finetune spends the budget on the
tokens of ALL scales and samples every scale with the finetuned model. The only difference
from the wavelet method is where the privacy budget goes. The ledger holds the one DP-SGD run.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from isoeps.methods._ar_family import ARFamilyConfig, ARFamilyMethod
from isoeps.methods.base import MethodConfig


class DPSGDFullFinetune(ARFamilyMethod):
    """DP-SGD on every scale's tokens of the public AR model."""

    name: ClassVar[str] = "dpsgd-full-finetune"
    description: ClassVar[str] = (
        "DP-finetune the same scale-causal AR model on all Haar scales (ablation baseline)"
    )
    Config: ClassVar[type[MethodConfig]] = ARFamilyConfig
    version: ClassVar[str] = "1"

    def private_scales(self) -> int:
        return self.config.levels + 1

    def full_resolution(
        self, tokens: torch.Tensor, *, prompts: list[str], generator: torch.Generator
    ) -> torch.Tensor:
        """Decode the tokens of every scale with the public tokenizer (all are generated).

        Args:
            tokens: token ids of all scales, one row per image.
            prompts: unused; every scale is already generated.
            generator: unused.

        Returns:
            Float images in [-1, 1] at full resolution.
        """
        return self.tokenizer.decode(tokens)
