"""A learned spectral tokenizer in the spirit of SIT (arXiv 2412.09607).

The same scales and token grid as the k-means tokenizer (:mod:`isoeps.models.tokenizer`):
``L + 1`` Haar scales coarse to fine, patches twice as large per finer level, so every scale
has ``tokens_per_scale`` tokens. Per scale, a small conv encoder maps the band's coefficients
to one latent vector per patch, finite scalar quantisation (:mod:`isoeps.models.fsq`) turns it
into a token, and a conv decoder maps the tokens back to the band.

Each finer scale is conditioned on the image that the coarser scales decode to (pixel units, at
the band's size): the encoder sees it beside the band, so a token spends its bits on what that
context cannot predict, and the decoder sees it beside the tokens. The context is made from the
*decoded* coarser scales, never from the exact ones, so decoding is scale-causal: a scale's
coefficients depend on its own tokens and coarser ones only, and a prefix of scales decodes to
the coarse image (stage 1 of the wavelet method needs that).

Training sees PUBLIC images only. The loss of a scale is its bands' MSE on the normalised
coefficients, each band weighted by its public variance: that is the pixel MSE of the scale (the
Haar transform is orthonormal), which PSNR measures. The normalisation stds are public buffers.
FSQ has no codebook and no EMA; after :meth:`LearnedSpectralTokenizer.fit` the tokenizer is in
eval mode with gradients off, so nothing a private forward pass does can change it.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch
from torch import nn

from isoeps.log import progress
from isoeps.models.fsq import FiniteScalarQuantizer
from isoeps.models.tokenizer import SpectralGeometry, SpectralTokenizerBase, coefficients_of
from isoeps.ops.haar import haar_idwt2

#: GroupNorm groups in every block (``width`` must be a multiple).
_GROUPS = 8


@dataclass(frozen=True)
class LearnedTokenizerConfig(SpectralGeometry):
    """The learned tokenizer: ``fsq_levels`` values per latent channel (a scale's vocabulary is
    their product; (8, 8, 8) = 512, the k-means default's), conv ``width`` and residual
    ``blocks`` per scale, and its public training (``steps`` of ``batch_size`` images at peak
    ``learning_rate``)."""

    fsq_levels: tuple[int, ...] = (8, 8, 8)
    width: int = 48
    blocks: int = 1
    steps: int = 1500
    batch_size: int = 64
    learning_rate: float = 2e-3

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.fsq_levels or min(self.fsq_levels) < 2:
            raise ValueError(f"tokenizer fsq_levels must be ints >= 2, got {self.fsq_levels}")
        if self.width < _GROUPS or self.width % _GROUPS:
            raise ValueError(f"tokenizer width must be a multiple of {_GROUPS}, got {self.width}")
        if self.blocks < 0 or self.steps < 1 or self.batch_size < 1:
            raise ValueError(
                "tokenizer blocks must be >= 0 and steps, batch_size >= 1, got "
                f"{self.blocks}, {self.steps}, {self.batch_size}"
            )
        if not self.learning_rate > 0:
            raise ValueError(f"tokenizer learning_rate must be > 0, got {self.learning_rate}")


class _ResBlock(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.GroupNorm(_GROUPS, width),
            nn.GELU(),
            nn.Conv2d(width, width, 3, padding=1),
            nn.GroupNorm(_GROUPS, width),
            nn.GELU(),
            nn.Conv2d(width, width, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class _ScaleCodec(nn.Module):
    """One scale's encoder (band [+ context] -> one latent per patch) and decoder (latents
    [+ context] -> band), both in normalised coefficient units."""

    def __init__(
        self, *, channels: int, patch: int, conditioned: bool, width: int, blocks: int, code: int
    ) -> None:
        super().__init__()
        context = 3 if conditioned else 0
        self.encoder = nn.Sequential(
            nn.Conv2d(channels + context, width, 3, padding=1),
            *(_ResBlock(width) for _ in range(blocks)),
            nn.Conv2d(width, width, patch, stride=patch),
            _ResBlock(width),
            nn.GELU(),  # no norm before a head: it would erase each group's level and scale
            nn.Conv2d(width, code, 1),
        )
        self.from_tokens = nn.Sequential(
            nn.Conv2d(code, width, 1),
            _ResBlock(width),
            nn.ConvTranspose2d(width, width, patch, stride=patch),
        )
        self.from_context = nn.Conv2d(3, width, 3, padding=1) if conditioned else None
        self.decoder = nn.Sequential(
            *(_ResBlock(width) for _ in range(blocks)),
            nn.GELU(),
            nn.Conv2d(width, channels, 3, padding=1),
        )

    def encode(self, band: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        return self.encoder(band if context is None else torch.cat([band, context], dim=1))

    def decode(self, codes: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        hidden = self.from_tokens(codes)
        if self.from_context is not None and context is not None:
            hidden = hidden + self.from_context(context)
        return self.decoder(hidden)


class LearnedSpectralTokenizer(SpectralTokenizerBase):
    """Per-scale conv encoders and decoders with an FSQ bottleneck, conditioned on the coarser
    scales' decoded image. Buffers ``band_std_<s>`` hold public per-band stds."""

    config: LearnedTokenizerConfig

    def __init__(self, config: LearnedTokenizerConfig, *, resolution: int) -> None:
        super().__init__(config, resolution=resolution)
        self.quantizer = FiniteScalarQuantizer(config.fsq_levels)
        self.codecs = nn.ModuleList(
            _ScaleCodec(
                channels=self.channels(scale),
                patch=config.patch_size(scale),
                conditioned=scale > 0,
                width=config.width,
                blocks=config.blocks,
                code=self.quantizer.dim,
            )
            for scale in range(config.num_scales)
        )
        for scale in range(config.num_scales):
            self.register_buffer(f"band_std_{scale}", torch.ones(self.channels(scale)))
        self.requires_grad_(False)
        self.eval()

    @property
    def vocab_size(self) -> int:
        return self.quantizer.codebook_size

    def band_std(self, scale: int) -> torch.Tensor:
        return getattr(self, f"band_std_{scale}")[None, :, None, None]

    @property
    def _grid(self) -> int:
        return math.isqrt(self.tokens_per_scale)

    # -- the scale-causal chain -----------------------------------------------------------
    def _context(self, decoded: list[torch.Tensor]) -> torch.Tensor | None:
        """The image the decoded coarser scales give, in pixel units (None for scale 0).

        Detached: a scale learns to reconstruct itself, not to bend coarser scales its way."""
        if not decoded:
            return None
        level = self.config.levels - len(decoded) + 1
        return haar_idwt2(coefficients_of([band.detach() for band in decoded])) / 2**level

    def _decode_scale(
        self, scale: int, codes: torch.Tensor, context: torch.Tensor | None
    ) -> torch.Tensor:
        """Codes ``(B, g, g, d)`` -> the band's coefficients."""
        # Contiguous: a channels-last view would send the convolutions down another kernel,
        # and decoding tokens would then differ (by ~1e-4) from the chain that chose them.
        normalised = self.codecs[scale].decode(codes.permute(0, 3, 1, 2).contiguous(), context)
        return normalised * self.band_std(scale)

    def _chain(
        self, images: torch.Tensor, num_scales: int | None
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
        """Encode and decode scale by scale: ``(bands, codes, decoded)``, one per scale."""
        bands = self.bands(images, num_scales)
        codes, decoded = [], []
        for scale, band in enumerate(bands):
            context = self._context(decoded)
            latents = self.codecs[scale].encode(band / self.band_std(scale), context)
            codes.append(self.quantizer(latents.permute(0, 2, 3, 1)))
            decoded.append(self._decode_scale(scale, codes[-1], context))
        return bands, codes, decoded

    # -- the tokenizer interface ----------------------------------------------------------
    @torch.no_grad()
    def encode(self, images: torch.Tensor, num_scales: int | None = None) -> torch.Tensor:
        """float images -> token ids ``(B, num_scales * tokens_per_scale)``, coarse first,
        each in ``[0, vocab_size)``, patches in raster order.

        Args:
            images: float images ``(B, 3, H, W)`` in [-1, 1], at the tokenizer's resolution.
            num_scales: how many scales, coarsest first; None for all.

        Returns:
            Long token ids.
        """
        _, codes, _ = self._chain(images, num_scales)
        ids = [self.quantizer.codes_to_indices(c).reshape(len(images), -1) for c in codes]
        return torch.cat(ids, dim=1) if ids else torch.zeros(len(images), 0, dtype=torch.long)

    @torch.no_grad()
    def decode_scales(self, tokens: torch.Tensor) -> list[torch.Tensor]:
        """token ids for the first ``k`` scales -> those scales' coefficient tensors."""
        decoded: list[torch.Tensor] = []
        grid = self._grid
        for scale, ids in enumerate(self.split_scales(tokens)):
            codes = self.quantizer.indices_to_codes(ids.reshape(len(ids), grid, grid))
            decoded.append(self._decode_scale(scale, codes, self._context(decoded)))
        return decoded

    # -- public training ------------------------------------------------------------------
    def loss(self, images: torch.Tensor) -> torch.Tensor:
        """The sum over scales of each scale's pixel MSE, relative to its public variance."""
        bands, _, decoded = self._chain(images, None)
        total = images.new_zeros(())
        for scale, (band, recon) in enumerate(zip(bands, decoded, strict=True)):
            variance = self.band_std(scale).flatten() ** 2
            per_band = ((recon - band) ** 2).mean(dim=(0, 2, 3))
            total = total + per_band.sum() / variance.sum()
        return total

    @torch.no_grad()
    def set_band_std(self, images: torch.Tensor) -> None:
        """Measure per-band stds on PUBLIC float images ``(N, 3, H, W)``."""
        for scale, band in enumerate(self.bands(images)):
            getattr(self, f"band_std_{scale}").copy_(band.std(dim=(0, 2, 3)).clamp_min(1e-4))

    def fit(
        self,
        images: torch.Tensor,
        *,
        seed: int,
        logger: logging.Logger | None = None,
        show_progress: bool = False,
        device: str | torch.device = "cpu",
    ) -> dict[str, float]:
        """Train on PUBLIC ``images`` from a fresh initialisation drawn from ``seed``.

        Args:
            images: float public images ``(N, 3, H, W)`` in [-1, 1].
            seed: the seed of the initialisation, the batches and the flips.
            logger: where progress is logged; None for no logging.
            show_progress: show a progress bar.
            device: where training runs; the tokenizer is left on the CPU, frozen.

        Returns:
            Reconstruction PSNR per scale (on these images) as ``psnr_scale<s>``.
        """
        c = self.config
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for module in self.modules():
                if module is not self and hasattr(module, "reset_parameters"):
                    module.reset_parameters()
        self.set_band_std(images)
        self.requires_grad_(True).to(device).train()
        optimizer = torch.optim.AdamW(self.parameters(), lr=c.learning_rate, weight_decay=0.0)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, _warmup_cosine(c.steps))
        generator = torch.Generator().manual_seed(seed)
        for step in progress(
            range(c.steps),
            desc="public tokenizer",
            log_off_terminal=False,
            **({} if show_progress else {"disable": True}),
        ):
            idx = torch.randint(len(images), (c.batch_size,), generator=generator)
            # Horizontal flips double the public data (H and D bands change sign).
            flip = torch.rand(c.batch_size, generator=generator) < 0.5
            batch = torch.where(flip[:, None, None, None], images[idx].flip(-1), images[idx])
            loss = self.loss(batch.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            if logger is not None and (step + 1) % max(1, c.steps // 10) == 0:
                logger.info("public tokenizer step %d/%d loss %.4f", step + 1, c.steps, loss.item())
        self.to("cpu").requires_grad_(False).eval()
        return self.psnr_per_scale(images)


def _warmup_cosine(steps: int):
    """A learning-rate factor: linear warm-up over 5% of ``steps``, then cosine to 10%."""
    warmup = max(1, steps // 20)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        done = (step - warmup) / max(1, steps - warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, done)))

    return factor
