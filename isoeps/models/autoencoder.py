"""A small KL autoencoder (diffusers ``AutoencoderKL``) trained on PUBLIC images: the latent
space of DP-LDM's diffusion model.

Training is the latent diffusion recipe at toy scale: an L1 + MSE reconstruction loss of the
decoded posterior sample and a small KL term (``kl_weight``), AdamW with a short warm-up. Its
``scaling_factor`` (the number latents are multiplied by before diffusion, Stable Diffusion's
0.18215) is set from the public latents' standard deviation, so that they enter the diffusion
model with unit variance, as Rombach et al. do; it is public like everything else here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from isoeps.errors import ConfigError


@dataclass(frozen=True)
class AutoencoderSpec:
    """Architecture: ``len(block_out_channels) - 1`` halvings of the side."""

    resolution: int = 32
    block_out_channels: tuple[int, ...] = (32, 64)
    latent_channels: int = 4
    layers_per_block: int = 1
    norm_num_groups: int = 16

    @property
    def downsample(self) -> int:
        return 2 ** (len(self.block_out_channels) - 1)

    @property
    def latent_size(self) -> int:
        return self.resolution // self.downsample


@dataclass(frozen=True)
class AutoencoderTraining:
    """Public training of the autoencoder."""

    steps: int = 600
    batch_size: int = 32
    learning_rate: float = 1e-3
    kl_weight: float = 1e-6
    warmup_steps: int = 20
    log_every: int = 100


def build_autoencoder(spec: AutoencoderSpec, *, seed: int) -> Any:
    """A freshly initialised ``AutoencoderKL`` (deterministic in ``seed``).

    Raises:
        ConfigError: the resolution is not divisible by the downsampling factor.
    """
    from diffusers import AutoencoderKL

    if spec.resolution % spec.downsample:
        raise ConfigError(
            f"autoencoder resolution={spec.resolution} must be divisible by {spec.downsample} "
            f"for block_out_channels={spec.block_out_channels}"
        )
    depth = len(spec.block_out_channels)
    torch.manual_seed(seed)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * depth,
        up_block_types=("UpDecoderBlock2D",) * depth,
        block_out_channels=tuple(spec.block_out_channels),
        layers_per_block=spec.layers_per_block,
        latent_channels=spec.latent_channels,
        norm_num_groups=spec.norm_num_groups,
        sample_size=spec.resolution,
    )


def train_autoencoder(
    vae: Any,
    *,
    images: np.ndarray,
    settings: AutoencoderTraining,
    seed: int,
    progress: Callable[[Any], Any] = lambda it: it,
    log: Callable[[str], None] = lambda message: None,
) -> list[float]:
    """Train ``vae`` on public images in place, then set its ``scaling_factor`` from them.

    Args:
        vae: an ``AutoencoderKL`` (from :func:`build_autoencoder`).
        images: uint8 ``(N, 3, H, W)`` PUBLIC images at the autoencoder's resolution.
        settings: steps, batch size, learning rate, KL weight, warm-up and log period.
        seed: the seed of the batches and the posterior samples.
        progress: wraps the step range (a progress bar, or not).
        log: receives progress messages (the loss every ``log_every`` steps).

    Returns:
        The loss of every step.

    Raises:
        ConfigError: ``images`` is empty.
    """
    if len(images) == 0:
        raise ConfigError("autoencoder training needs at least one public image")
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    device = next(vae.parameters()).device
    vae.train().requires_grad_(True)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=settings.learning_rate)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / max(1, settings.warmup_steps))
    )
    losses: list[float] = []
    for step in progress(range(settings.steps)):
        x = _to_unit(images[rng.integers(0, len(images), size=settings.batch_size)], device)
        posterior = vae.encode(x).latent_dist
        decoded = vae.decode(posterior.sample(generator=generator)).sample
        reconstruction = (decoded - x).abs().mean() + (decoded - x).pow(2).mean()
        loss = reconstruction + settings.kl_weight * posterior.kl().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        losses.append(float(loss.detach()))
        if settings.log_every and (step + 1) % settings.log_every == 0:
            log(f"public autoencoder step {step + 1}/{settings.steps} loss {losses[-1]:.4f}")
    vae.eval().requires_grad_(False)
    vae.register_to_config(scaling_factor=public_scaling_factor(vae, images, seed=seed))
    return losses


@torch.no_grad()
def public_scaling_factor(vae: Any, images: np.ndarray, *, seed: int, count: int = 512) -> float:
    """1 / std of the posterior means of up to ``count`` public images."""
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(images), size=min(count, len(images)), replace=False)
    device = next(vae.parameters()).device
    latents = vae.encode(_to_unit(images[np.sort(chosen)], device)).latent_dist.mean
    return float(1.0 / latents.float().std().clamp_min(1e-6))


def _to_unit(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 images -> float in [-1, 1] on ``device``."""
    return torch.as_tensor(np.asarray(images), device=device).float() / 127.5 - 1.0
