"""Finite scalar quantisation (FSQ; Mentzer et al., arXiv 2309.15505).

Each of ``d`` latent channels is bounded by a shifted ``tanh`` and rounded to one of
``levels[i]`` values; a code is the tuple of rounded values, so the implicit codebook has
``prod(levels)`` entries and nothing to learn or update: no codebook, no EMA, no dead codes.
Rounding passes gradients straight through. The bound and the index layout follow
``vector_quantize_pytorch.FSQ`` (the reference the tests compare with), so codes and indices
agree with it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

#: Keeps the bounded value strictly inside the outermost rounding intervals.
_BOUND_EPS = 1e-3


class FiniteScalarQuantizer(nn.Module):
    """Quantise channel-last latents ``(..., d)`` to ``prod(levels)`` implicit codes.

    Args:
        levels: the number of values of each latent channel (each >= 2).

    Raises:
        ValueError: no levels, or a level below 2.
    """

    def __init__(self, levels: Sequence[int]) -> None:
        super().__init__()
        levels = tuple(int(level) for level in levels)
        if not levels or min(levels) < 2:
            raise ValueError(f"FSQ levels must be a non-empty list of ints >= 2, got {levels}")
        self.levels = levels
        basis = [math.prod(levels[:i]) for i in range(len(levels))]
        # Derived from ``levels``: not state (the tokenizer's config already holds them).
        self.register_buffer("_levels", torch.tensor(levels), persistent=False)
        self.register_buffer("_basis", torch.tensor(basis), persistent=False)

    @property
    def dim(self) -> int:
        return len(self.levels)

    @property
    def codebook_size(self) -> int:
        return math.prod(self.levels)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        """Bounded, rounded latents, in [-1, 1] per channel; gradients pass straight through.

        Args:
            latents: ``(..., d)``.

        Returns:
            The codes, same shape.
        """
        levels = self._levels.to(latents.dtype)
        half_l = (levels - 1) * (1 + _BOUND_EPS) / 2
        offset = torch.where(self._levels % 2 == 0, 0.5, 0.0).to(latents.dtype)
        bounded = torch.tanh(latents + torch.atanh(offset / half_l)) * half_l - offset
        rounded = bounded + (bounded.round() - bounded).detach()
        return rounded / (self._levels // 2).to(latents.dtype)

    def codes_to_indices(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes ``(..., d)`` -> long indices ``(...)`` in ``[0, codebook_size)``."""
        half_width = self._levels // 2
        digits = (codes * half_width + half_width).round().long()
        return (digits * self._basis).sum(dim=-1)

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        """Long indices ``(...)`` -> codes ``(..., d)`` (the inverse of
        :meth:`codes_to_indices`)."""
        digits = (indices.long()[..., None] // self._basis) % self._levels
        half_width = self._levels // 2
        return ((digits - half_width) / half_width).float()
