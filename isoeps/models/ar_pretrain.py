"""Public training of the AR family: spectral tokenizer, AR transformer and SR net.

Everything here sees PUBLIC images only and is deterministic given its seeds (torch
generators, no global RNG). Sizes and step counts are arguments so that tests train in
seconds and the quick suite's cold pretraining takes a few minutes on CPU.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence

import numpy as np
import torch

from isoeps.datasets.base import ImageSplit
from isoeps.log import progress
from isoeps.models.ar_transformer import ScaleCausalTransformer, per_example_loss
from isoeps.models.learned_tokenizer import LearnedSpectralTokenizer, LearnedTokenizerConfig
from isoeps.models.sr_net import WaveletSR
from isoeps.models.text_encoders import TextEncoder
from isoeps.models.tokenizer import (
    SpectralGeometry,
    SpectralTokenizer,
    SpectralTokenizerBase,
    TokenizerConfig,
    to_float,
)

#: captions -> (features, mask) with fixed shapes, see :func:`text_features`.
TextFeaturizer = Callable[[Sequence[str]], tuple[torch.Tensor, torch.Tensor]]


def text_features(
    encoder: TextEncoder, captions: Sequence[str], *, mode: str, length: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Frozen text features of fixed shape: ``pooled`` -> ``(B, 1, dim)`` and an all-True
    ``(B, 1)`` mask; ``tokens`` -> ``(B, length, dim)`` token states (truncated / zero-padded)
    and their mask. The encoder memoises captions, which repeat a lot.

    Args:
        encoder: the frozen text encoder.
        captions: one caption per row.
        mode: ``pooled`` or ``tokens``.
        length: the token length L of ``tokens`` mode; unused for ``pooled``.

    Returns:
        ``(features, mask)``: float ``(B, 1 or L, dim)`` and bool ``(B, 1 or L)``.
    """
    captions = list(captions)
    if mode == "pooled":
        pooled = encoder.encode_pooled(captions) if captions else torch.zeros(0, encoder.dim)
        return pooled[:, None].float(), torch.ones(len(captions), 1, dtype=torch.bool)
    if not captions:
        return torch.zeros(0, length, encoder.dim), torch.zeros(0, length, dtype=torch.bool)
    hidden, mask = encoder.encode(captions)
    hidden, mask = hidden[:, :length], mask[:, :length]
    pad = length - hidden.shape[1]
    if pad > 0:
        hidden = torch.nn.functional.pad(hidden, (0, 0, 0, pad))
        mask = torch.nn.functional.pad(mask, (0, pad), value=False)
    return hidden.float(), mask


def drop_conditions(
    mask: torch.Tensor, rate: float, rngs: Sequence[np.random.Generator]
) -> torch.Tensor:
    """Blank the text mask of a ``rate`` fraction of rows (classifier-free guidance training);
    row i's coin comes from ``rngs[i]`` (one generator repeated is one sequential stream).

    Args:
        mask: the bool text mask ``(B, L)``.
        rate: the fraction of rows dropped; <= 0 drops none (and draws nothing).
        rngs: one generator per row.

    Returns:
        The mask, with dropped rows all False.
    """
    if rate <= 0:
        return mask
    keep = torch.from_numpy(np.array([rng.random() >= rate for rng in rngs], dtype=bool))
    return mask & keep[:, None]


def pick_captions(
    captions: Sequence[Sequence[str]], rngs: Sequence[np.random.Generator]
) -> list[str]:
    """One random caption per record, record i's drawn with ``rngs[i]``.

    Args:
        captions: each record's captions; none empty.
        rngs: one generator per record (as many as records).

    Returns:
        The chosen captions.
    """
    return [list(c)[int(rng.integers(len(c)))] for c, rng in zip(captions, rngs, strict=True)]


def build_tokenizer(config: SpectralGeometry, *, resolution: int) -> SpectralTokenizerBase:
    """The (unfitted) tokenizer that ``config`` describes.

    Args:
        config: a :class:`TokenizerConfig` (k-means) or a :class:`LearnedTokenizerConfig`.
        resolution: the image side.

    Returns:
        The tokenizer.

    Raises:
        TypeError: another kind of config.
    """
    kinds: dict[type, type[SpectralTokenizerBase]] = {
        TokenizerConfig: SpectralTokenizer,
        LearnedTokenizerConfig: LearnedSpectralTokenizer,
    }
    if type(config) not in kinds:
        raise TypeError(f"no tokenizer for a {type(config).__name__}")
    return kinds[type(config)](config, resolution=resolution)


def fit_tokenizer(
    public: ImageSplit,
    *,
    config: SpectralGeometry,
    seed: int,
    max_images: int = 4000,
    logger: logging.Logger | None = None,
    show_progress: bool = False,
    device: str | torch.device = "cpu",
) -> tuple[SpectralTokenizerBase, dict[str, float]]:
    """Fit a tokenizer on (a seeded subset of) the PUBLIC split.

    Args:
        public: the public split.
        config: the tokenizer's config (its type picks the tokenizer).
        seed: the seed of the subset and of the fit.
        max_images: the most images fitted on.
        logger: where a learned tokenizer logs its training; None for no logging.
        show_progress: show a learned tokenizer's progress bar.
        device: where a learned tokenizer trains (it is kept on the CPU).

    Returns:
        ``(tokenizer, psnr)``: the fitted tokenizer and its PSNR per scale on those images.
    """
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.permutation(len(public))[: min(max_images, len(public))])
    images = to_float(public.images[idx])
    tokenizer = build_tokenizer(config, resolution=public.resolution)
    psnr = tokenizer.fit(
        images, seed=seed, logger=logger, show_progress=show_progress, device=device
    )
    return tokenizer, psnr


def tokenize(
    tokenizer: SpectralTokenizerBase, images: np.ndarray, *, chunk: int = 1024
) -> torch.Tensor:
    """uint8 images -> token ids ``(N, S * n)`` of all scales.

    Args:
        tokenizer: the fitted tokenizer.
        images: uint8 ``(N, 3, H, W)``.
        chunk: images encoded at a time.

    Returns:
        Token ids, long ``(N, S * n)``; ``(0, 0)`` for no images.
    """
    parts = [
        tokenizer.encode(to_float(images[start : start + chunk]))
        for start in range(0, len(images), chunk)
    ]
    return torch.cat(parts, dim=0) if parts else torch.zeros(0, 0, dtype=torch.long)


def _schedule(step: int, steps: int, lr: float) -> float:
    warmup = max(1, steps // 20)
    if step < warmup:
        return lr * (step + 1) / warmup
    progress_frac = (step - warmup) / max(1, steps - warmup)
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress_frac)))


def train_ar(
    model: ScaleCausalTransformer,
    *,
    tokens: torch.Tensor,
    captions: Sequence[Sequence[str]],
    featurize: TextFeaturizer,
    steps: int,
    batch_size: int,
    learning_rate: float,
    cond_dropout: float,
    seed: int,
    logger: logging.Logger | None = None,
    show_progress: bool = True,
    device: str | torch.device = "cpu",
) -> list[float]:
    """Non-private teacher-forced training on PUBLIC tokens; returns the loss per step.

    Trains on ``device`` and leaves ``model`` on the CPU, where the public models are kept.
    Batches are drawn by a CPU generator, so the data order does not depend on the device.

    Args:
        model: the AR transformer, trained in place.
        tokens: token ids of the public images, ``(N, S * n)``.
        captions: each public image's captions.
        featurize: captions -> ``(text, text_mask)``.
        steps: how many optimizer steps.
        batch_size: images per step, drawn with replacement.
        learning_rate: the peak learning rate of the schedule.
        cond_dropout: the fraction of captions dropped (classifier-free guidance).
        seed: the seed of the batches, captions and dropout.
        logger: where progress is logged; None for no logging.
        show_progress: show a progress bar.
        device: where training runs.

    Returns:
        The training loss of each step.
    """
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.01)
    losses = []
    for step in progress(
        range(steps),
        desc="public AR",
        log_off_terminal=False,
        **({} if show_progress else {"disable": True}),
    ):
        idx = torch.randint(len(tokens), (batch_size,), generator=generator).numpy()
        text, mask = featurize(pick_captions([captions[i] for i in idx], [rng] * len(idx)))
        batch = {
            "tokens": tokens[idx].to(device),
            "text": text.to(device),
            "text_mask": drop_conditions(mask, cond_dropout, [rng] * mask.shape[0]).to(device),
        }
        for group in optimizer.param_groups:
            group["lr"] = _schedule(step, steps, learning_rate)
        loss = per_example_loss(model, batch).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
        if logger is not None and (step + 1) % max(1, steps // 10) == 0:
            logger.info("public AR step %d/%d loss %.4f", step + 1, steps, loss.item())
    model.to("cpu").eval()
    return losses


def train_sr(
    net: WaveletSR,
    *,
    images: np.ndarray,
    steps: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    logger: logging.Logger | None = None,
    show_progress: bool = True,
    device: str | torch.device = "cpu",
) -> list[float]:
    """Train the SR net on PUBLIC uint8 images; returns the loss per step.

    Trains on ``device`` and leaves ``net`` on the CPU (like :func:`train_ar`).

    Args:
        net: the SR net, trained in place (its band scales are set from ``images`` first).
        images: uint8 ``(N, 3, H, W)`` public images.
        steps: how many optimizer steps.
        batch_size: images per step, drawn with replacement.
        learning_rate: the peak learning rate of the schedule.
        seed: the seed of the batches and flips.
        logger: where progress is logged; None for no logging.
        show_progress: show a progress bar.
        device: where training runs.

    Returns:
        The training loss of each step.
    """
    generator = torch.Generator().manual_seed(seed)
    net.set_band_std(to_float(images[: min(len(images), 4000)]))
    net.to(device).train()
    optimizer = torch.optim.AdamW(net.parameters(), lr=learning_rate, weight_decay=0.0)
    losses = []
    for step in progress(
        range(steps),
        desc="public SR",
        log_off_terminal=False,
        **({} if show_progress else {"disable": True}),
    ):
        idx = torch.randint(len(images), (batch_size,), generator=generator).numpy()
        batch = to_float(images[idx]).to(device)
        # Horizontal flips double the public data; H and D bands change sign, which the net
        # learns from the flipped inputs themselves.
        flip = torch.rand(batch_size, generator=generator) < 0.5
        batch = torch.where(flip.to(device)[:, None, None, None], batch.flip(-1), batch)
        for group in optimizer.param_groups:
            group["lr"] = _schedule(step, steps, learning_rate)
        loss = net.loss(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if logger is not None and (step + 1) % max(1, steps // 10) == 0:
            logger.info("public SR step %d/%d loss %.4f", step + 1, steps, loss.item())
    net.to("cpu").eval()
    return losses
