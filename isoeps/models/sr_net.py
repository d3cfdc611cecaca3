"""A wavelet-domain super-resolution net: coarse image -> finer Haar detail bands.

One small conv net per level ``l`` (L..1) maps the level-``l`` approximation (in pixel units,
``LL_l / 2^l``) to the 9 detail channels of level ``l`` (H, V, D bands of 3 colours), which the
inverse Haar step combines with ``LL_l`` into ``LL_{l-1}``. Levels chain at sampling time, so a
coarse image of any level up to L is brought to full resolution. Targets are normalised by
per-band standard deviations measured on PUBLIC images (buffers, frozen with the net).

Trained with MSE it predicts the conditional mean of the details: edges come back, random
fine texture does not (the AR continuation backend samples texture instead).
"""

from __future__ import annotations

import torch
from torch import nn

from isoeps.ops.haar import haar_dwt2, haar_idwt2_single


class _LevelNet(nn.Module):
    def __init__(self, width: int, blocks: int) -> None:
        super().__init__()
        self.inp = nn.Conv2d(3, width, 3, padding=1)
        self.body = nn.ModuleList(
            nn.Sequential(
                nn.GroupNorm(8, width),
                nn.GELU(),
                nn.Conv2d(width, width, 3, padding=1),
                nn.GroupNorm(8, width),
                nn.GELU(),
                nn.Conv2d(width, width, 3, padding=1),
            )
            for _ in range(blocks)
        )
        self.out = nn.Conv2d(width, 9, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        for block in self.body:
            h = h + block(h)
        return self.out(h)


class WaveletSR(nn.Module):
    """``levels`` per-level nets; ``band_std`` ``(levels, 9)`` holds public per-band stds
    (index ``l - 1`` for level ``l``)."""

    def __init__(self, *, levels: int, width: int = 64, blocks: int = 2) -> None:
        super().__init__()
        self.levels = levels
        self.width = width
        self.blocks = blocks
        self.nets = nn.ModuleList(_LevelNet(width, blocks) for _ in range(levels))
        self.register_buffer("band_std", torch.ones(levels, 9))

    def metadata(self) -> dict[str, int]:
        return {"levels": self.levels, "width": self.width, "blocks": self.blocks}

    @torch.no_grad()
    def set_band_std(self, images: torch.Tensor) -> None:
        """Measure per-band detail stds on PUBLIC float images ``(N, 3, H, W)``."""
        coefficients = haar_dwt2(images, self.levels)
        for index, bands in enumerate(coefficients[1:]):
            level = self.levels - index
            stacked = torch.cat(list(bands), dim=1)
            self.band_std[level - 1] = stacked.std(dim=(0, 2, 3)).clamp_min(1e-4)

    def predict_details(self, approx: torch.Tensor, level: int) -> torch.Tensor:
        """``LL_level`` coefficients -> the 9 detail channels of ``level`` (coefficient units).

        Args:
            approx: ``LL_level`` coefficients ``(B, 3, h, w)``.
            level: the Haar level, >= 1.

        Returns:
            The (horizontal, vertical, diagonal) bands stacked, ``(B, 9, h, w)``.
        """
        pixels = approx / 2**level
        scaled = self.nets[level - 1](pixels)
        return scaled * self.band_std[level - 1][None, :, None, None]

    def loss(self, images: torch.Tensor) -> torch.Tensor:
        """Mean normalised MSE of every level's details given the exact approximation."""
        coefficients = haar_dwt2(images, self.levels)
        approx = coefficients[0]
        total = images.new_zeros(())
        for index, bands in enumerate(coefficients[1:]):
            level = self.levels - index
            target = torch.cat(list(bands), dim=1)
            std = self.band_std[level - 1][None, :, None, None]
            pred = self.nets[level - 1](approx / 2**level)
            total = total + ((pred - target / std) ** 2).mean()
            approx = haar_idwt2_single(approx, bands)
        return total / self.levels

    @torch.no_grad()
    def upsample(self, image: torch.Tensor, *, from_level: int) -> torch.Tensor:
        """A level-``from_level`` image in pixel units ``(B, 3, H/2^l, W/2^l)`` -> full size.

        Args:
            image: the coarse image, in pixel units.
            from_level: its Haar level l.

        Returns:
            The image ``(B, 3, H, W)``, in pixel units.
        """
        approx = image * 2**from_level
        for level in range(from_level, 0, -1):
            details = self.predict_details(approx, level)
            approx = haar_idwt2_single(approx, tuple(details.chunk(3, dim=1)))
        return approx
