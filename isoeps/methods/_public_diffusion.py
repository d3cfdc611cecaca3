"""The public text-to-image diffusion model that DPAgg-TI and Private Evolution build on.

Its config fields are the public part of both methods' configs (so the public cache key
covers them), and its training, saving and loading are the same for both: the tiny
pixel-space UNet of :mod:`isoeps.models.diffusion`, trained on public data in the harness's
public context, or a local Stable Diffusion folder (``pretrained_path``, GPU), loaded by every
cell from the folder itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from isoeps.errors import ConfigError, MissingWeightsError
from isoeps.methods.base import MethodConfig, MethodContext, private_field, public_field

DIFFUSION_FOLDER = "diffusion"


class PublicDiffusionConfig(MethodConfig):
    """The public diffusion model's fields, and how it samples, shared by the methods built
    on it (a method may change a default by redeclaring the field)."""

    text_encoder: str = public_field("minilm", description="registered frozen text encoder")
    resolution: int = public_field(32, description="image size of the tiny pixel-space model")
    unet_channels: tuple[int, ...] = public_field(
        (32, 64, 64), description="UNet block widths (tiny: fast on a CPU)"
    )
    pretrain_steps: int = public_field(600, ge=1, description="public UNet training steps")
    pretrain_batch_size: int = public_field(32, ge=1)
    pretrain_learning_rate: float = public_field(1e-3, gt=0)
    cond_drop_prob: float = public_field(
        0.1, ge=0, lt=1, description="caption dropout for classifier-free guidance"
    )
    pretrained_path: str | None = public_field(
        None,
        description="local Stable Diffusion folder (GPU); replaces the tiny model, runs at "
        "its native size and returns images of `resolution`",
    )
    guidance_scale: float = private_field(3.0, ge=0, description="classifier-free guidance")
    sampler_steps: int = private_field(20, ge=1, description="DDIM steps (cost is linear in it)")
    sample_batch_size: int = private_field(128, ge=1)


def train_public_diffusion(
    config: PublicDiffusionConfig,
    public: Any,
    *,
    ctx: MethodContext,
    progress: Callable[[Any], Any],
    vae: Any = None,
) -> Any:
    """Train the tiny model on the public split; None with ``pretrained_path`` (nothing to
    train: the folder is checked here and every cell loads it in :func:`load_public_diffusion`,
    so that a first run does not read the weights twice).

    Args:
        config: the method's config.
        public: the public :class:`~isoeps.datasets.base.ImageSplit`.
        ctx: the public context (:meth:`MethodContext.for_public`): "init" derives from the
            public seed, never from a cell's seed.
        progress: wraps the training loop in a progress bar (or not).
        vae: a trained public autoencoder whose latents the UNet denoises (DP-LDM); None for
            the pixel-space model.

    Returns:
        The trained :class:`~isoeps.models.diffusion.TextDiffusion`, or None.
    """
    from isoeps.models.diffusion import DiffusionSpec, TextDiffusion, TrainSettings

    if config.pretrained_path is not None:
        TextDiffusion.check_stable_diffusion_folder(config.pretrained_path)
        return None
    spec = DiffusionSpec(
        resolution=config.resolution,
        block_out_channels=tuple(config.unet_channels),
        text_encoder=config.text_encoder,
    )
    seed = ctx.seed_for("init")
    model = TextDiffusion.build(spec, device=ctx.device, seed=seed, vae=vae)
    settings = TrainSettings(
        steps=config.pretrain_steps,
        batch_size=config.pretrain_batch_size,
        learning_rate=config.pretrain_learning_rate,
        cond_drop_prob=config.cond_drop_prob,
    )
    model.train_public(
        images=public.images,
        captions=public.captions,
        settings=settings,
        seed=seed,
        progress=progress,
        log=ctx.logger.info,
    )
    return model


def save_public_diffusion(
    config: PublicDiffusionConfig, model: Any, directory: Path, *, marker: str, method: str
) -> None:
    """Write the tiny model (if any) and the ``marker`` file that says which model it is.

    Raises:
        ConfigError: no model was trained and no ``pretrained_path`` is set.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if config.pretrained_path is None:
        if model is None:
            raise ConfigError(f"{method}: save_public before pretrain_public")
        model.save(directory / DIFFUSION_FOLDER)
    (directory / marker).write_text(json.dumps({"pretrained_path": config.pretrained_path}))


def load_public_diffusion(
    config: PublicDiffusionConfig, directory: Path, *, marker: str, method: str, device: str
) -> Any:
    """Load what :func:`save_public_diffusion` wrote (or the Stable Diffusion folder).

    Raises:
        MissingWeightsError: ``directory`` holds no ``marker`` file.
    """
    from isoeps.models.diffusion import TextDiffusion

    directory = Path(directory)
    if not (directory / marker).is_file():
        raise MissingWeightsError(f"{method}: no public model in {directory} ({marker})")
    if config.pretrained_path is not None:
        return TextDiffusion.from_stable_diffusion(
            config.pretrained_path, device=device, resolution=config.resolution
        )
    return TextDiffusion.load(directory / DIFFUSION_FOLDER, device=device)
