"""Batched textual inversion: one new token per image, learned side by side.

Each image ``i`` gets its own vector ``v_i`` for the placeholder token; its prompt is
``prompts[i]`` (which must contain the placeholder). All vectors are optimised together in one
forward pass per step, with the diffusion model and the text encoder frozen. Because the loss
is a sum of per-image losses, every operation in the UNet is per example (GroupNorm, attention
within one example), Adam is element-wise and image ``i``'s timesteps and noise come from its
own generator ``generators[i]`` (keyed to the record by the guard), ``v_i`` depends on image
``i`` only: the batch is an implementation detail, not a coupling between records.

With ``groups`` (DPAgg-TI with g > 1), the images of one group share one vector, learned on
the sum of their losses; a group's vector depends on that group's images only, and chunks
never split a group.
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
    generators: Sequence[torch.Generator],
    progress: Callable[[Any], Any] = lambda it: it,
    groups: Sequence[int] | np.ndarray | None = None,
) -> torch.Tensor:
    """Learn one placeholder vector per image; returns ``(len(images), dim)`` on the CPU.

    ``init`` (``(dim,)``, public, e.g. the embedding of a descriptive word) is every vector's
    starting point. Images are processed in chunks of ``settings.chunk_size`` to bound memory.
    ``groups`` (one label in 0..k-1 per image, every label used) makes the images of a group
    share one vector; the result is then ``(k, dim)``, row j for group j.

    Args:
        model: the frozen text-to-image model.
        images: uint8 ``(N, 3, H, W)``.
        prompts: one prompt per image, each with the placeholder.
        init: see above.
        settings: steps, learning rate and chunk size.
        generators: one torch generator per image (its timesteps and noise).
        progress: wraps the chunk range (e.g. a progress bar).
        groups: see above; None for one vector per image.

    Returns:
        The learned vectors.

    Raises:
        ValueError: ``images``, ``prompts`` and ``generators`` differ in length.
        ConfigError: a prompt lacks the placeholder, or ``settings.steps`` < 1.
    """
    prompts, generators = list(prompts), list(generators)
    if not len(prompts) == len(images) == len(generators):
        raise ValueError(
            f"{len(images)} images, {len(prompts)} prompts and {len(generators)} generators"
        )
    if groups is not None:
        return _invert_groups(
            model,
            images=images,
            prompts=prompts,
            init=init,
            settings=settings,
            generators=generators,
            progress=progress,
            groups=np.asarray(groups, dtype=np.int64),
        )
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
                generators=generators[start:stop],
            )
        )
    if not results:
        return torch.zeros((0, init.shape[0]))
    return torch.cat(results)


def _invert_groups(
    model: TextDiffusion,
    *,
    images: np.ndarray,
    prompts: list[str],
    init: torch.Tensor,
    settings: InversionSettings,
    generators: list[torch.Generator],
    progress: Callable[[Any], Any],
    groups: np.ndarray,
) -> torch.Tensor:
    """One vector per group; whole groups are packed into chunks of about ``chunk_size``."""
    if groups.shape != (len(prompts),):
        raise ValueError(f"{len(prompts)} images but {groups.shape} group labels")
    count = int(groups.max()) + 1 if len(groups) else 0
    members = [np.flatnonzero(groups == g) for g in range(count)]
    if any(len(m) == 0 for m in members):
        raise ValueError(f"group labels must use every value in 0..{count - 1}")
    chunks: list[list[int]] = []
    size = settings.chunk_size
    for g in range(count):
        if not chunks or sum(len(members[h]) for h in chunks[-1]) + len(members[g]) > size:
            chunks.append([])
        chunks[-1].append(g)
    results = []
    for chunk in progress(chunks):
        index = np.concatenate([members[g] for g in chunk])
        slots = np.repeat(np.arange(len(chunk)), [len(members[g]) for g in chunk])
        results.append(
            _invert_chunk(
                model,
                images=images[index],
                prompts=[prompts[i] for i in index],
                init=init,
                settings=settings,
                generators=[generators[i] for i in index],
                slots=torch.as_tensor(slots, device=model.device),
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
    generators: list[torch.Generator],
    slots: torch.Tensor | None = None,
) -> torch.Tensor:
    """Vectors for one chunk: one per image, or one per slot (``slots[i]`` is image i's)."""
    x0 = model.to_model_space(images)
    count = len(prompts) if slots is None else int(slots.max()) + 1
    vectors = init.detach().to(model.device).repeat(count, 1).requires_grad_(True)
    optimizer = torch.optim.Adam([vectors], lr=settings.learning_rate)
    for _ in range(settings.steps):
        per_image = vectors if slots is None else vectors[slots]
        hidden, mask = model.condition(prompts, per_image)
        # Sum, not mean: each vector's gradient is its own image's loss gradient, whatever
        # the chunk size.
        loss = model.per_example_loss(x0, hidden, mask, generator=generators).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return vectors.detach().cpu()
