"""Batched textual inversion: one new token per image, learned side by side.

Each image ``i`` gets its own vector ``v_i`` for the placeholder token; its prompt is
``prompts[i]`` (which must contain the placeholder). All vectors are optimised together in one
forward pass per step, with the diffusion model and the text encoder frozen. Because the loss
is a sum of per-image losses, every operation in the UNet is per example (GroupNorm, attention
within one example) and Adam is element-wise, ``v_i`` depends on image ``i`` (and public
randomness) only: the batch is an implementation detail, not a coupling between records.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from isoeps.errors import ConfigError
from isoeps.models.diffusion import TextDiffusion
from isoeps.models.text_encoders import PLACEHOLDER


@dataclass(frozen=True)
class InversionSettings:
    """Optimisation of the per-image token vectors."""

    steps: int = 30
    learning_rate: float = 0.02
    chunk_size: int = 64


def invert_tokens(
    model: TextDiffusion,
    *,
    images: np.ndarray,
    prompts: Sequence[str],
    init: torch.Tensor,
    settings: InversionSettings,
    generator: torch.Generator,
    progress: Callable[[Any], Any] = lambda it: it,
) -> torch.Tensor:
    """Learn one placeholder vector per image; returns ``(len(images), dim)`` on the CPU.

    ``init`` (``(dim,)``, public, e.g. the embedding of a descriptive word) is every vector's
    starting point. Images are processed in chunks of ``settings.chunk_size`` to bound memory.
    """
    prompts = list(prompts)
    if len(prompts) != len(images):
        raise ValueError(f"{len(images)} images but {len(prompts)} prompts")
    missing = [p for p in prompts if PLACEHOLDER not in p]
    if missing:
        raise ConfigError(f"textual inversion prompt lacks {PLACEHOLDER!r}: {missing[0]!r}")
    if settings.steps < 1:
        raise ConfigError(f"textual inversion steps must be >= 1, got {settings.steps}")
    model.unet.eval().requires_grad_(False)
    results = []
    for start in progress(range(0, len(prompts), settings.chunk_size)):
        stop = start + settings.chunk_size
        results.append(
            _invert_chunk(
                model,
                images=images[start:stop],
                prompts=prompts[start:stop],
                init=init,
                settings=settings,
                generator=generator,
            )
        )
    if not results:
        return torch.zeros((0, init.shape[0]))
    return torch.cat(results)


def _invert_chunk(
    model: TextDiffusion,
    *,
    images: np.ndarray,
    prompts: list[str],
    init: torch.Tensor,
    settings: InversionSettings,
    generator: torch.Generator,
) -> torch.Tensor:
    x0 = model.to_model_space(images)
    vectors = init.detach().to(model.device).repeat(len(prompts), 1).requires_grad_(True)
    optimizer = torch.optim.Adam([vectors], lr=settings.learning_rate)
    for _ in range(settings.steps):
        hidden, mask = model.condition(prompts, vectors)
        # Sum, not mean: each vector's gradient is its own image's loss gradient, whatever
        # the chunk size.
        loss = model.per_example_loss(x0, hidden, mask, generator=generator).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return vectors.detach().cpu()
