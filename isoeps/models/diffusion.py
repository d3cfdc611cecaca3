"""A text-conditional diffusion model: a diffusers ``UNet2DConditionModel`` and a frozen
text encoder, trained here on public captioned images, sampled with DDIM and classifier-free
guidance.

The default is tiny and pixel-space (32x32, ~2M parameters; a few hundred steps on a CPU give
recognisable colour layouts). :meth:`TextDiffusion.from_stable_diffusion` loads a local Stable
Diffusion folder instead (latent space through its VAE; GPU territory, never run in CI).

Conditioning is the text encoder's last hidden states with their attention mask; the
unconditional prompt is the empty caption, dropped in with probability ``cond_drop_prob``
during training so that guidance works.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from isoeps.errors import ConfigError, MissingWeightsError
from isoeps.models.text_encoders import PLACEHOLDER, TextEncoder, load_text_encoder

SPEC_FILE = "diffusion.json"
VAE_FOLDER = "vae"
UNCONDITIONAL = ""


@dataclass(frozen=True)
class DiffusionSpec:
    """Architecture of the tiny pixel-space model (JSON-able; part of cache keys)."""

    resolution: int = 32
    block_out_channels: tuple[int, ...] = (32, 64, 64)
    layers_per_block: int = 1
    #: Cross-attention only at the coarsest ``attention_levels`` resolutions: attention at
    #: 16x16 costs ~60% more CPU time per step for little gain on 32x32 images.
    attention_levels: int = 1
    attention_head_dim: int = 8
    norm_num_groups: int = 16
    train_timesteps: int = 1000
    beta_schedule: str = "squaredcos_cap_v2"
    text_encoder: str = "minilm"

    def __post_init__(self) -> None:
        depth = len(self.block_out_channels)
        if not 0 <= self.attention_levels <= depth:
            raise ConfigError(
                f"diffusion attention_levels={self.attention_levels} must be in [0, {depth}]"
            )
        if self.resolution % (2 ** (depth - 1)):
            raise ConfigError(
                f"diffusion resolution={self.resolution} must be divisible by "
                f"2**{depth - 1} for block_out_channels={self.block_out_channels}"
            )
        if any(c % self.norm_num_groups for c in self.block_out_channels):
            raise ConfigError(
                f"diffusion block_out_channels={self.block_out_channels} must be multiples "
                f"of norm_num_groups={self.norm_num_groups}"
            )


@dataclass
class TrainSettings:
    """Public (non-private) training of the UNet; the text encoder stays frozen."""

    steps: int = 600
    batch_size: int = 32
    learning_rate: float = 1e-3
    cond_drop_prob: float = 0.1
    warmup_steps: int = 20
    log_every: int = 100


class TextDiffusion:
    """UNet + noise scheduler + frozen text encoder (+ VAE in latent space)."""

    def __init__(
        self,
        *,
        unet: Any,
        scheduler_config: dict[str, Any],
        text_encoder: TextEncoder,
        resolution: int,
        vae: Any = None,
        spec: DiffusionSpec | None = None,
    ) -> None:
        from diffusers import DDPMScheduler

        if int(unet.config.cross_attention_dim) != text_encoder.dim:
            raise ConfigError(
                f"UNet cross_attention_dim={unet.config.cross_attention_dim} does not match "
                f"text encoder {text_encoder.name!r} dim={text_encoder.dim}"
            )
        self.unet = unet
        self.text_encoder = text_encoder
        self.resolution = int(resolution)
        self.vae = vae
        self.spec = spec
        self.scheduler = DDPMScheduler.from_config(scheduler_config)
        self.device = text_encoder.device
        # Stable Diffusion was trained on unmasked, fully padded prompts.
        self.use_text_mask = not text_encoder.pad_to_max_length

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def build(
        cls, spec: DiffusionSpec, *, device: str = "cpu", seed: int = 0, vae: Any = None
    ) -> TextDiffusion:
        """A freshly initialised tiny model (deterministic in ``seed``).

        Args:
            spec: the architecture, text encoder and noise schedule.
            device: where the model is placed (the text encoder's device).
            seed: the seed of the initialisation.
            vae: a trained, frozen ``AutoencoderKL`` (a latent diffusion model: the UNet
                denoises its latents, ``resolution / 2**(depth - 1)`` a side); None for pixels.

        Returns:
            The model.
        """
        from diffusers import UNet2DConditionModel

        encoder = load_text_encoder(spec.text_encoder, device=device)
        depth = len(spec.block_out_channels)
        plain = depth - spec.attention_levels
        down = ("DownBlock2D",) * plain + ("CrossAttnDownBlock2D",) * spec.attention_levels
        up = ("CrossAttnUpBlock2D",) * spec.attention_levels + ("UpBlock2D",) * plain
        channels, size = 3, spec.resolution
        if vae is not None:
            channels = int(vae.config.latent_channels)
            size = spec.resolution // 2 ** (len(vae.config.block_out_channels) - 1)
            vae.to(encoder.device).eval().requires_grad_(False)
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(
            sample_size=size,
            in_channels=channels,
            out_channels=channels,
            down_block_types=down,
            up_block_types=up,
            block_out_channels=spec.block_out_channels,
            layers_per_block=spec.layers_per_block,
            cross_attention_dim=encoder.dim,
            attention_head_dim=spec.attention_head_dim,
            norm_num_groups=spec.norm_num_groups,
        ).to(encoder.device)
        scheduler_config = {
            "num_train_timesteps": spec.train_timesteps,
            "beta_schedule": spec.beta_schedule,
            "prediction_type": "epsilon",
            # DDIM clips its x0 estimate to [-1, 1]: right for pixels, wrong for latents.
            "clip_sample": vae is None,
        }
        return cls(
            unet=unet,
            scheduler_config=scheduler_config,
            text_encoder=encoder,
            resolution=spec.resolution,
            vae=vae,
            spec=spec,
        )

    @staticmethod
    def check_stable_diffusion_folder(path: str | Path) -> Path:
        """That ``path`` is a local diffusers Stable Diffusion folder with every part, without
        reading any weights.

        Args:
            path: the Stable Diffusion folder.

        Returns:
            The folder.

        Raises:
            MissingWeightsError: the folder or one of its parts is missing.
            ConfigError: it has no ``text_encoder/`` folder.
        """
        root = Path(path)
        if not root.is_dir():
            raise MissingWeightsError(f"Stable Diffusion folder not found: {root}")
        if not (root / "text_encoder").is_dir():
            raise ConfigError(
                f"{root} has no text_encoder/ folder: DPAgg-TI needs a text-conditional model "
                "whose text encoder holds the learned token"
            )
        for sub in ("unet", "vae", "scheduler", "tokenizer"):
            if not (root / sub).is_dir():
                raise MissingWeightsError(f"Stable Diffusion folder {root} lacks {sub}/")
        return root

    @classmethod
    def from_stable_diffusion(
        cls, path: str | Path, *, device: str = "cpu", resolution: int = 512
    ) -> TextDiffusion:
        """A local diffusers Stable Diffusion folder (unet/, vae/, scheduler/, text_encoder/,
        tokenizer/). Never downloads. It runs at its native size; ``resolution`` is the size
        of the images it returns (and private images are resized up to the native size).

        Args:
            path: the Stable Diffusion folder.
            device: where the model is placed.
            resolution: the side of the returned images, in pixels.

        Returns:
            The model, frozen.

        Raises:
            MissingWeightsError: the folder or one of its parts is missing.
            ConfigError: it has no ``text_encoder/`` folder.
        """
        from diffusers import AutoencoderKL, UNet2DConditionModel

        from isoeps.models.text_encoders import HFLocalTextEncoder

        root = cls.check_stable_diffusion_folder(path)
        encoder = HFLocalTextEncoder(
            path=root / "text_encoder",
            tokenizer_path=root / "tokenizer",
            device=device,
            max_length=77,
            pad_to_max_length=True,
        )
        unet = UNet2DConditionModel.from_pretrained(root, subfolder="unet", local_files_only=True)
        vae = AutoencoderKL.from_pretrained(root, subfolder="vae", local_files_only=True)
        scheduler_config = json.loads((root / "scheduler" / "scheduler_config.json").read_text())
        unet.to(encoder.device).eval().requires_grad_(False)
        vae.to(encoder.device).eval().requires_grad_(False)
        return cls(
            unet=unet,
            scheduler_config=scheduler_config,
            text_encoder=encoder,
            resolution=resolution,
            vae=vae,
        )

    # -- persistence --------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        """Write the tiny model (UNet weights, its autoencoder if latent, spec and scheduler
        config) to ``directory``."""
        if self.spec is None:
            raise ConfigError("only the tiny built-in model is saved; Stable Diffusion is loaded")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.unet.save_pretrained(directory / "unet", safe_serialization=True)
        if self.vae is not None:
            self.vae.save_pretrained(directory / VAE_FOLDER, safe_serialization=True)
        payload = {
            "spec": asdict(self.spec),
            "scheduler": dict(self.scheduler.config),
            "text_encoder_sha256": self.text_encoder.weights_sha256,
        }
        (directory / SPEC_FILE).write_text(json.dumps(payload, indent=2, default=list))

    @classmethod
    def load(cls, directory: Path, *, device: str = "cpu") -> TextDiffusion:
        """Load what :meth:`save` wrote.

        Args:
            directory: the folder :meth:`save` wrote.
            device: where the model is placed.

        Returns:
            The model, in eval mode.

        Raises:
            MissingWeightsError: ``directory`` holds no saved model.
        """
        from diffusers import UNet2DConditionModel

        directory = Path(directory)
        spec_file = directory / SPEC_FILE
        if not spec_file.is_file():
            raise MissingWeightsError(f"no saved diffusion model in {directory} ({SPEC_FILE})")
        payload = json.loads(spec_file.read_text())
        raw = payload["spec"]
        raw["block_out_channels"] = tuple(raw["block_out_channels"])
        spec = DiffusionSpec(**raw)
        encoder = load_text_encoder(spec.text_encoder, device=device)
        unet = UNet2DConditionModel.from_pretrained(
            directory / "unet", local_files_only=True, low_cpu_mem_usage=False
        )
        vae = None
        if (directory / VAE_FOLDER).is_dir():
            from diffusers import AutoencoderKL

            vae = AutoencoderKL.from_pretrained(
                directory / VAE_FOLDER, local_files_only=True, low_cpu_mem_usage=False
            )
            vae.to(encoder.device).eval().requires_grad_(False)
        return cls(
            unet=unet.to(encoder.device).eval(),
            scheduler_config=payload["scheduler"],
            text_encoder=encoder,
            resolution=spec.resolution,
            vae=vae,
            spec=spec,
        )

    # -- conditioning and loss ----------------------------------------------------------------
    def condition(
        self, prompts: Sequence[str], vectors: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Text states and mask for the UNet; ``vectors`` fill the placeholder token.

        Args:
            prompts: the prompts.
            vectors: the placeholder's vector ``(dim,)`` or ``(B, dim)``; None to encode as is.

        Returns:
            ``(hidden, mask)``; the mask is None when the model does not use one.
        """
        if vectors is None:
            hidden, mask = self.text_encoder.encode(list(prompts))
        else:
            hidden, mask = self.text_encoder.encode_with_vectors(list(prompts), vectors)
        return hidden, (mask if self.use_text_mask else None)

    @property
    def pixel_size(self) -> int:
        """The image size the UNet (through the VAE, if any) was built for; inputs are resized
        to it and samples from it to ``resolution``."""
        if self.vae is None:
            return self.resolution
        factor = 2 ** (len(self.vae.config.block_out_channels) - 1)
        return int(self.unet.config.sample_size) * factor

    def to_model_space(self, images: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 ``(B, 3, H, W)`` images -> what the UNet denoises (pixels in [-1, 1] or
        VAE latents)."""
        x = torch.as_tensor(np.asarray(images), device=self.device).float() / 127.5 - 1.0
        size = self.pixel_size
        if x.shape[-1] != size or x.shape[-2] != size:
            x = torch.nn.functional.interpolate(
                x, size=(size, size), mode="bilinear", antialias=True
            )
        if self.vae is None:
            return x
        with torch.no_grad():
            latents = self.vae.encode(x.to(self.vae.dtype)).latent_dist.mean
        return latents.float() * self.vae.config.scaling_factor

    def _training_draws(
        self, shape: torch.Size, generator: torch.Generator | Sequence[torch.Generator]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(timesteps, noise) for a batch of ``shape``, from one stream or one per example."""
        steps = self.scheduler.config.num_train_timesteps
        if isinstance(generator, torch.Generator):
            timesteps = torch.randint(0, steps, (shape[0],), generator=generator)
            return timesteps, torch.randn(shape, generator=generator)
        if len(generator) != shape[0]:
            raise ValueError(f"{shape[0]} examples but {len(generator)} generators")
        if not generator:
            return torch.zeros(0, dtype=torch.long), torch.zeros(shape)
        timesteps = torch.cat([torch.randint(0, steps, (1,), generator=g) for g in generator])
        noise = torch.stack([torch.randn(shape[1:], generator=g) for g in generator])
        return timesteps, noise

    def per_example_loss(
        self,
        x0: torch.Tensor,
        hidden: torch.Tensor,
        mask: torch.Tensor | None,
        *,
        generator: torch.Generator | Sequence[torch.Generator],
    ) -> torch.Tensor:
        """Denoising loss (epsilon-prediction MSE) of each example, shape ``(B,)``.

        ``generator`` is one stream for the batch, or one per example (example i's timestep
        and noise then come from ``generator[i]`` alone, whatever else is in the batch).

        Args:
            x0: clean images in model space.
            hidden: the text states.
            mask: the text mask, or None.
            generator: see above.

        Returns:
            The loss of each example.
        """
        timesteps, noise = self._training_draws(x0.shape, generator)
        timesteps, noise = timesteps.to(self.device), noise.to(self.device)
        noisy = self.scheduler.add_noise(x0, noise, timesteps)
        prediction = self.unet(
            noisy, timesteps, encoder_hidden_states=hidden, encoder_attention_mask=mask
        ).sample
        return (prediction.float() - noise).pow(2).flatten(1).mean(dim=1)

    def dp_collate(
        self, *, cond_drop_prob: float = 0.0
    ) -> Callable[[Any, Any], dict[str, torch.Tensor]]:
        """The DP-SGD engine's ``collate`` for the UNet's denoising loss.

        Each record's caption (dropped to the unconditional one with ``cond_drop_prob``),
        timestep and noise come from that record's own stream, the engine's seeded ``rngs``,
        so the loss itself draws nothing: :func:`denoising_loss` has the engine's ``LossFn``
        shape, as the AR loss does, and every per-sample-gradient backend sees one set of draws.

        Args:
            cond_drop_prob: caption dropout, for classifier-free guidance.

        Returns:
            ``collate(records, rngs) -> batch`` with ``noisy``, ``timesteps``, ``noise``,
            ``hidden`` and (with a text mask) ``mask``.
        """
        steps = self.scheduler.config.num_train_timesteps

        def collate(records: Any, rngs: Sequence[np.random.Generator]) -> dict[str, torch.Tensor]:
            prompts = [
                UNCONDITIONAL
                if rng.random() < cond_drop_prob
                else captions[int(rng.integers(len(captions)))]
                for captions, rng in zip(records.captions, rngs, strict=True)
            ]
            x0 = self.to_model_space(records.images)
            timesteps = torch.tensor([int(rng.integers(steps)) for rng in rngs], dtype=torch.long)
            noise = torch.from_numpy(
                np.stack(
                    [rng.standard_normal(tuple(x0.shape[1:]), dtype=np.float32) for rng in rngs]
                )
            ).to(x0.device)
            hidden, mask = self.condition(prompts)
            batch = {
                "noisy": self.scheduler.add_noise(x0, noise, timesteps.to(x0.device)),
                "timesteps": timesteps.to(x0.device),
                "noise": noise,
                "hidden": hidden,
            }
            if mask is not None:
                batch["mask"] = mask
            return batch

        return collate

    # -- public training ----------------------------------------------------------------------
    def train_public(
        self,
        *,
        images: np.ndarray,
        captions: Sequence[Sequence[str]],
        settings: TrainSettings,
        seed: int,
        progress: Callable[[Any], Any] = lambda it: it,
        log: Callable[[str], None] = lambda message: None,
    ) -> list[float]:
        """Train the UNet on public images with one random caption each; returns the loss
        curve. Captions are dropped to the empty caption with ``cond_drop_prob``.

        Args:
            images: uint8 ``(N, 3, H, W)`` public images; at least one.
            captions: each image's captions.
            settings: steps, batch size, learning rate, warm-up, caption dropout and log period.
            seed: the seed of the batches, captions, timesteps and noise.
            progress: wraps the step range (e.g. a progress bar).
            log: receives progress messages.

        Returns:
            The loss per step.

        Raises:
            ConfigError: ``images`` is empty.
        """
        if len(images) == 0:
            raise ConfigError("public training needs at least one image")
        rng = np.random.default_rng(seed)
        generator = torch.Generator().manual_seed(seed)
        self.unet.train().requires_grad_(True)
        optimizer = torch.optim.AdamW(self.unet.parameters(), lr=settings.learning_rate)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: min(1.0, (step + 1) / max(1, settings.warmup_steps))
        )
        losses: list[float] = []
        for step in progress(range(settings.steps)):
            index = rng.integers(0, len(images), size=settings.batch_size)
            prompts = [
                UNCONDITIONAL
                if rng.random() < settings.cond_drop_prob
                else captions[i][rng.integers(len(captions[i]))]
                for i in index
            ]
            hidden, mask = self.condition(prompts)
            x0 = self.to_model_space(images[index])
            loss = self.per_example_loss(x0, hidden, mask, generator=generator).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.unet.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            losses.append(float(loss.detach()))
            if settings.log_every and (step + 1) % settings.log_every == 0:
                log(
                    f"public diffusion step {step + 1}/{settings.steps} "
                    f"loss {np.mean(losses[-settings.log_every :]):.4f}"
                )
        self.unet.eval().requires_grad_(False)
        return losses

    # -- sampling -----------------------------------------------------------------------------
    @torch.no_grad()
    def sample(
        self,
        prompts: Sequence[str],
        *,
        generator: torch.Generator,
        steps: int = 25,
        guidance_scale: float = 3.0,
        token_vector: torch.Tensor | None = None,
        batch_size: int = 128,
    ) -> np.ndarray:
        """One uint8 ``(len(prompts), 3, H, W)`` image per prompt (DDIM, classifier-free
        guidance). ``token_vector`` fills the placeholder token where a prompt has one.

        Args:
            prompts: one prompt per image.
            generator: the torch generator of the initial noise and the sampler.
            steps: DDIM steps.
            guidance_scale: the classifier-free guidance scale (1: none); unconditional
                prompts use none.
            token_vector: the placeholder token's vector, or None.
            batch_size: images per denoising batch.

        Returns:
            See above.

        Raises:
            ConfigError: a prompt holds the placeholder and ``token_vector`` is None.
        """
        from diffusers import DDIMScheduler

        prompts = list(prompts)
        if any(PLACEHOLDER in p for p in prompts) and token_vector is None:
            raise ConfigError(f"prompts contain {PLACEHOLDER!r} but no token vector was given")
        scheduler = DDIMScheduler.from_config(self.scheduler.config)
        scheduler.set_timesteps(int(steps))
        uncond_hidden, uncond_mask = self.condition([UNCONDITIONAL])
        # channels_last: 1.27x faster UNet passes on the reference CPU, outputs equal to 4e-6.
        self.unet.to(memory_format=torch.channels_last)
        outputs = []
        for start in range(0, len(prompts), batch_size):
            chunk = prompts[start : start + batch_size]
            hidden, mask = self.condition(
                chunk, None if token_vector is None else token_vector.detach()
            )
            # Unconditional prompts need no guidance: both passes would be the same.
            scale = 1.0 if all(p == UNCONDITIONAL for p in chunk) else guidance_scale
            noise = torch.randn(self._latent_shape(len(chunk)), generator=generator)
            outputs.append(
                self._denoise(
                    scheduler,
                    scheduler.timesteps,
                    noise,
                    (hidden, mask),
                    (uncond_hidden, uncond_mask),
                    scale,
                )
            )
        return np.concatenate(outputs) if outputs else np.zeros((0, 3, 1, 1), np.uint8)

    @torch.no_grad()
    def vary(
        self,
        images: np.ndarray,
        prompts: Sequence[str],
        *,
        strength: float,
        generator: torch.Generator,
        steps: int = 25,
        guidance_scale: float = 3.0,
        batch_size: int = 128,
    ) -> np.ndarray:
        """SDEdit (Meng et al. 2022): noise each image part of the way, then denoise it with
        DDIM, so that the output is a variation of the input whose distance grows with
        ``strength``. Private Evolution's VARIATION_API.

        Args:
            images: uint8 ``(n, 3, H, W)`` images to vary.
            prompts: one prompt per image (the unconditional prompt for none).
            strength: in (0, 1]: the fraction of the DDIM schedule that is re-run (1 starts
                at the schedule's first, noisiest timestep, where little of the input is left).
            generator: the torch generator of the added noise.
            steps: DDIM steps of the full schedule; about ``strength * steps`` are run.
            guidance_scale: classifier-free guidance (unconditional prompts use none).
            batch_size: images per denoising batch.

        Returns:
            uint8 ``(n, 3, resolution, resolution)`` variations, in input order.

        Raises:
            ConfigError: ``strength`` outside (0, 1], or images and prompts of other lengths.
        """
        from diffusers import DDIMScheduler

        if not 0.0 < strength <= 1.0:
            raise ConfigError(f"SDEdit strength must be in (0, 1], got {strength!r}")
        prompts = list(prompts)
        if len(prompts) != len(images):
            raise ConfigError(f"vary: {len(images)} images but {len(prompts)} prompts")
        scheduler = DDIMScheduler.from_config(self.scheduler.config)
        scheduler.set_timesteps(int(steps))
        # At least the last step runs, however weak the strength.
        skipped = min(int(steps) - 1, round(int(steps) * (1.0 - strength)))
        timesteps = scheduler.timesteps[skipped:]
        uncond = self.condition([UNCONDITIONAL])
        self.unet.to(memory_format=torch.channels_last)
        outputs = []
        for begin in range(0, len(prompts), batch_size):
            chunk = prompts[begin : begin + batch_size]
            clean = self.to_model_space(images[begin : begin + batch_size]).cpu()
            noise = torch.randn(clean.shape, generator=generator)
            start = scheduler.add_noise(clean, noise, timesteps[:1].repeat(len(chunk)))
            scale = 1.0 if all(p == UNCONDITIONAL for p in chunk) else guidance_scale
            outputs.append(
                self._denoise(scheduler, timesteps, start, self.condition(chunk), uncond, scale)
            )
        return np.concatenate(outputs) if outputs else np.zeros((0, 3, 1, 1), np.uint8)

    def _latent_shape(self, batch: int) -> tuple[int, int, int, int]:
        """The shape of ``batch`` starting points in the space the UNet denoises."""
        size = self.unet.config.sample_size if self.vae is not None else self.resolution
        return (batch, self.unet.config.in_channels, size, size)

    def _denoise(
        self,
        scheduler: Any,
        timesteps: torch.Tensor,
        start: torch.Tensor,
        condition: tuple[torch.Tensor, torch.Tensor | None],
        uncond: tuple[torch.Tensor, torch.Tensor | None],
        guidance_scale: float,
    ) -> np.ndarray:
        """Run ``scheduler`` (DDIM, its timesteps set) over ``timesteps``, its whole schedule or
        SDEdit's tail, from ``start`` (noise, or noised inputs) with classifier-free guidance;
        uint8 images."""
        hidden, mask = condition
        uncond_hidden, uncond_mask = uncond
        batch = hidden.shape[0]
        x = start.to(self.device).contiguous(memory_format=torch.channels_last)
        if guidance_scale == 1.0:
            model_hidden, model_mask = hidden, mask
        else:
            # Conditional and unconditional passes share one batch: pad both to the same width.
            width = max(hidden.shape[1], uncond_hidden.shape[1])
            model_hidden = torch.cat(
                [_pad_to(hidden, width), _pad_to(uncond_hidden, width).expand(batch, -1, -1)]
            )
            model_mask = None
            if mask is not None and uncond_mask is not None:
                model_mask = torch.cat(
                    [_pad_to(mask, width), _pad_to(uncond_mask, width).expand(batch, -1)]
                )
        for t in timesteps:
            model_in = x if guidance_scale == 1.0 else torch.cat([x, x])
            eps = self.unet(
                model_in, t, encoder_hidden_states=model_hidden, encoder_attention_mask=model_mask
            ).sample
            if guidance_scale == 1.0:
                guided = eps
            else:
                cond, uncond = eps.chunk(2)
                guided = uncond + guidance_scale * (cond - uncond)
            x = scheduler.step(guided, t, x).prev_sample
        if self.vae is not None:
            x = self.vae.decode(x / self.vae.config.scaling_factor).sample
            x = torch.nn.functional.interpolate(
                x.float(), size=(self.resolution, self.resolution), mode="bilinear", antialias=True
            )
        return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu().numpy()


def denoising_loss(unet: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Per-example epsilon-prediction MSE, shape ``(B,)``, of a batch from
    :meth:`TextDiffusion.dp_collate`: the engine's ``LossFn`` shape.

    Args:
        unet: the UNet.
        batch: ``noisy``, ``timesteps``, ``hidden``, ``noise`` and optionally ``mask``.

    Returns:
        The loss of each example.
    """
    prediction = unet(
        batch["noisy"],
        batch["timesteps"],
        encoder_hidden_states=batch["hidden"],
        encoder_attention_mask=batch.get("mask"),
    ).sample
    return (prediction.float() - batch["noise"]).pow(2).flatten(1).mean(dim=1)


def _pad_to(tensor: torch.Tensor, width: int) -> torch.Tensor:
    """Zero-pad dim 1 to ``width`` (text states or masks)."""
    extra = width - tensor.shape[1]
    if extra <= 0:
        return tensor
    pad = torch.zeros(
        (tensor.shape[0], extra, *tensor.shape[2:]), dtype=tensor.dtype, device=tensor.device
    )
    return torch.cat([tensor, pad], dim=1)
