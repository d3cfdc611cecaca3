"""DP-LDM (Lyu et al., "Differentially Private Latent Diffusion Models", arXiv 2305.15759).

Public pretraining, on public data only:

1. a small KL autoencoder (:mod:`isoeps.models.autoencoder`, diffusers ``AutoencoderKL``);
2. a text-conditional UNet (diffusers ``UNet2DConditionModel``, conditioned on the frozen
   text encoder isoeps ships) on its latents (:class:`~isoeps.models.diffusion.TextDiffusion`
   with that autoencoder).

``fit`` DP-finetunes the attention modules only, through the shared engine
(:class:`~isoeps.privacy.engine.PrivateGradients`): every parameter of every transformer
block's ``attn1`` (self-attention: ``to_q``, ``to_k``, ``to_v``, ``to_out.0``) and ``attn2``
(cross-attention; its ``to_k`` and ``to_v`` are the projection of the text condition, the
conditioning projection, since the text encoder itself stays frozen). The autoencoder, the
convolutions, norms, feed-forward layers and the text encoder are frozen. :meth:`DPLDM.
trainable` lists the exact names. The loss is the epsilon-prediction MSE of the public model,
with caption dropout ``cond_drop_prob`` drawn from each record's own stream (so classifier-free
guidance keeps working).

The training loop's choices are the method's post-processing of the privatised gradients,
run by the engine's :func:`~isoeps.privacy.engine.train_dp_sgd`: Adam at
``dp_sgd.learning_rate`` after a linear warm-up of ``warmup_steps``, and an exponential moving
average of the trained parameters (``ema_decay``; 0 keeps the last iterate), which samples use,
as the DP-LDM recipe does.

``pretrained_path`` (a local Stable Diffusion folder, GPU) replaces both public models: its
own VAE and UNet, the same attention-only DP fine-tuning.

Budgets: ``inf`` runs the same Poisson schedule without clipping or noise; ``public`` samples
from the public model.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from isoeps.accountants import PrivacyBudget
from isoeps.errors import ConfigError
from isoeps.methods._public_diffusion import (
    PublicDiffusionConfig,
    load_public_diffusion,
    save_public_diffusion,
    train_public_diffusion,
)
from isoeps.methods.base import (
    OPEN_PROMPT,
    FitReport,
    Method,
    MethodConfig,
    Samples,
    private_field,
    public_field,
)
from isoeps.privacy.config import Backend, DPSGDConfig
from isoeps.privacy.engine import plan_dp_sgd, train_dp_sgd
from isoeps.privacy.guard import PrivateData

PUBLIC_FILE = "dp_ldm.json"
#: Module names whose parameters DP-LDM trains: self- and cross-attention.
ATTENTION_MODULES: tuple[str, ...] = ("attn1", "attn2")


class DPLDMDPSGDConfig(DPSGDConfig):
    """The engine's :class:`DPSGDConfig` with DP-LDM's defaults."""

    steps: int = Field(40, ge=1, strict=True)
    expected_batch_size: int = Field(256, ge=1, strict=True)
    learning_rate: float = Field(1e-3, gt=0, allow_inf_nan=False)
    max_physical_batch_size: int = Field(64, ge=1, strict=True)
    # Every trained parameter lives in an nn.Linear: book-keeping clipping is exact here.
    backend: Backend = "bk"


class DPLDMConfig(PublicDiffusionConfig):
    """Configuration of :class:`DPLDM` (the UNet's fields are :class:`PublicDiffusionConfig`'s)."""

    # -- the public autoencoder ---------------------------------------------------------------
    vae_channels: tuple[int, ...] = public_field(
        (32, 64), description="autoencoder block widths; len - 1 halvings of the side"
    )
    latent_channels: int = public_field(4, ge=1)
    vae_steps: int = public_field(600, ge=1, description="public autoencoder training steps")
    vae_batch_size: int = public_field(32, ge=1)
    vae_learning_rate: float = public_field(1e-3, gt=0)
    kl_weight: float = public_field(1e-6, ge=0, description="KL term of the autoencoder loss")
    # -- the private fit ----------------------------------------------------------------------
    dp_sgd: DPLDMDPSGDConfig = private_field(DPLDMDPSGDConfig())
    warmup_steps: int = private_field(5, ge=0, description="linear learning-rate warm-up")
    ema_decay: float = private_field(
        0.9, ge=0, lt=1, description="EMA of the trained parameters; 0: the last iterate"
    )


class DPLDM(Method):
    """DP-LDM: DP-SGD on the attention modules of a public latent diffusion model."""

    name: ClassVar[str] = "dp-ldm"
    description: ClassVar[str] = (
        "DP-LDM: a latent diffusion model (public autoencoder and UNet) whose attention "
        "modules alone are DP-finetuned"
    )
    Config: ClassVar[type[MethodConfig]] = DPLDMConfig

    config: DPLDMConfig

    def __init__(self, config: Any = None, *, ctx: Any) -> None:
        super().__init__(config, ctx=ctx)
        self.public_model: Any = None
        self.model: Any = None

    # -- public models ------------------------------------------------------------------------
    def pretrain_public(self, public: Any) -> None:
        from isoeps.models.autoencoder import (
            AutoencoderSpec,
            AutoencoderTraining,
            build_autoencoder,
            train_autoencoder,
        )

        vae = None
        if self.config.pretrained_path is None:
            spec = AutoencoderSpec(
                resolution=self.config.resolution,
                block_out_channels=tuple(self.config.vae_channels),
                latent_channels=self.config.latent_channels,
            )
            seed = self.ctx.seed_for("init")
            vae = build_autoencoder(spec, seed=seed).to(self.ctx.device)
            settings = AutoencoderTraining(
                steps=self.config.vae_steps,
                batch_size=self.config.vae_batch_size,
                learning_rate=self.config.vae_learning_rate,
                kl_weight=self.config.kl_weight,
            )
            train_autoencoder(
                vae,
                images=public.images,
                settings=settings,
                seed=seed,
                progress=self._progress,
                log=self.ctx.logger.info,
            )
        self.public_model = train_public_diffusion(
            self.config, public, ctx=self.ctx, progress=self._progress, vae=vae
        )

    def save_public(self, directory: Path) -> None:
        save_public_diffusion(
            self.config, self.public_model, directory, marker=PUBLIC_FILE, method=self.name
        )

    def load_public(self, directory: Path) -> None:
        self.public_model = load_public_diffusion(
            self.config, directory, marker=PUBLIC_FILE, method=self.name, device=self.ctx.device
        )

    # -- the private fit ----------------------------------------------------------------------
    @staticmethod
    def trainable(unet: Any) -> list[str]:
        """The names of the parameters DP-LDM trains: those of every ``attn1`` and ``attn2``.

        Raises:
            ConfigError: the UNet has no attention module (nothing to train).
        """
        names = [
            name
            for name, _ in unet.named_parameters()
            if any(f".{module}." in f".{name}" for module in ATTENTION_MODULES)
        ]
        if not names:
            raise ConfigError("dp-ldm: the UNet has no attention modules (attn1, attn2) to train")
        return names

    def plan(self, budget: PrivacyBudget, num_records: int) -> dict[str, Any] | None:
        """The DP-SGD plan (q, T, calibrated sigma, achieved epsilon) ``fit`` would follow.

        Args:
            budget: the cell's privacy budget.
            num_records: how many private records ``fit`` would see.

        Returns:
            The plan as a dict; None in a ``public`` cell.
        """
        if budget.mode == "public":
            return None
        return plan_dp_sgd(
            config=self.config.dp_sgd, budget=budget, num_records=num_records
        ).to_dict()

    def fit(self, private: PrivateData | None, budget: PrivacyBudget) -> FitReport:
        """``public``: keep the public model. ``private``/``inf``: DP-finetune a copy's
        attention modules through the shared engine, with warm-up and EMA.

        Args:
            private: the guard over the private records; unused in a ``public`` cell.
            budget: the cell's privacy budget.

        Returns:
            Steps, sigma, q, C and wall time; the trained parameter count in ``details``.

        Raises:
            ConfigError: no public model yet, or a ``private``/``inf`` budget with ``private``
                None.
        """
        started = time.perf_counter()
        self.check_budget(budget)
        if self.public_model is None:
            raise ConfigError(f"{self.name}: fit before pretrain_public/load_public")
        if budget.mode == "public":
            self.model = self.public_model
            return FitReport(mode="public")
        if private is None:
            raise ConfigError(f"{self.name}: budget {budget.mode!r} needs private data")
        # A copy of the UNet alone: the autoencoder and text encoder stay frozen and shared.
        from isoeps.models.diffusion import denoising_loss

        model = copy.copy(self.public_model)
        model.unet = copy.deepcopy(self.public_model.unet)
        names = self.trainable(model.unet)
        report = train_dp_sgd(
            guard=private,
            module=model.unet,
            loss_fn=denoising_loss,
            collate=model.dp_collate(cond_drop_prob=self.config.cond_drop_prob),
            config=self.config.dp_sgd,
            budget=budget,
            trainable=names,
            device=self.ctx.device,
            logger=self.ctx.logger,
            show_progress=self.ctx.show_progress,
            warmup_steps=self.config.warmup_steps,
            ema_decay=self.config.ema_decay,
        )
        model.unet.eval().requires_grad_(False)
        self.model = model
        plan = report.plan
        trained = set(names)
        return FitReport(
            mode=budget.mode,
            steps=plan.steps,
            noise_multiplier=plan.noise_multiplier,
            sample_rate=plan.sample_rate,
            clip_norm=plan.clip_norm if plan.is_private else None,
            wall_time_s=time.perf_counter() - started,
            details={
                "trained_parameters": sum(
                    p.numel() for n, p in model.unet.named_parameters() if n in trained
                ),
                "trained_modules": list(ATTENTION_MODULES),
                "backend": report.backend,
                "expected_batch_size": plan.expected_batch_size,
                "planned_epsilon": plan.epsilon,
                "ema_decay": self.config.ema_decay,
                "warmup_steps": self.config.warmup_steps,
            },
        )

    # -- sampling -----------------------------------------------------------------------------
    def sample(self, prompts: list[str], n: int) -> Samples:
        """``n`` images, cycling through ``prompts``, from the fitted (or public) model.

        Raises:
            ConfigError: ``fit`` has not run, or ``prompts`` is empty.
        """
        if self.model is None:
            raise ConfigError(f"{self.name}: sample before fit")
        if not prompts:
            raise ConfigError(f"{self.name}: sample needs at least one prompt")
        captions = [prompts[i % len(prompts)] for i in range(n)]
        return Samples(images=self._generate(captions), prompts=captions, eval_captions=captions)

    def sample_unconditional(self, n: int) -> Samples:
        """``n`` images of the null condition (what caption dropout trains)."""
        from isoeps.models.diffusion import UNCONDITIONAL

        if self.model is None:
            raise ConfigError(f"{self.name}: sample before fit")
        images = self._generate([UNCONDITIONAL] * n)
        return Samples(images=images, prompts=[OPEN_PROMPT] * n, eval_captions=[OPEN_PROMPT] * n)

    def _generate(self, prompts: list[str]) -> Any:
        return self.model.sample(
            prompts,
            generator=self.ctx.torch_generator("sampling"),
            steps=self.config.sampler_steps,
            guidance_scale=self.config.guidance_scale,
            batch_size=self.config.sample_batch_size,
        )
