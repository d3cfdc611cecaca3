"""The shared recipe of the spectral-token AR family (wavelet-two-stage, dpsgd-full-finetune).

Both methods share the public models (spectral tokenizer, scale-causal AR transformer, wavelet
SR net; one cache key, so one public pretraining serves both and every epsilon) and the DP-SGD
finetune through the shared engine. They differ only in which scales the private budget is
spent on (:meth:`ARFamilyMethod.private_scales`) and how samples reach full resolution.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from isoeps.accountants import PrivacyBudget
from isoeps.datasets.base import ImageSplit
from isoeps.errors import ConfigError
from isoeps.methods.base import (
    OPEN_PROMPT,
    FitReport,
    Method,
    MethodConfig,
    Samples,
    private_field,
    public_field,
)

#: The caption that conditions on nothing: :meth:`ARFamilyMethod.featurize` masks it out
#: entirely, as caption dropout does in training.
NULL_CAPTION = ""
from isoeps.models.ar_pretrain import (
    build_tokenizer,
    drop_conditions,
    fit_tokenizer,
    pick_captions,
    text_features,
    tokenize,
    train_ar,
    train_sr,
)
from isoeps.models.ar_transformer import ARConfig, ScaleCausalTransformer, per_example_loss
from isoeps.models.learned_tokenizer import LearnedTokenizerConfig
from isoeps.models.sr_net import WaveletSR
from isoeps.models.text_encoders import TextEncoder, load_text_encoder
from isoeps.models.tokenizer import (
    SpectralGeometry,
    SpectralTokenizerBase,
    TokenizerConfig,
    to_float,
    to_uint8,
)
from isoeps.privacy.config import Backend, DPSGDConfig
from isoeps.privacy.engine import DPTrainReport, plan_dp_sgd, train_dp_sgd
from isoeps.privacy.guard import PrivateData

PUBLIC_FILE = "ar_family.pt"
META_FILE = "ar_family.json"
#: Bumped when the public models' training changes, so stale caches are not reused.
FAMILY_VERSION = "1"


class ARDPSGDConfig(DPSGDConfig):
    """The engine's :class:`DPSGDConfig` with this family's defaults (a YAML ``dp_sgd:`` block
    fills what it omits from these)."""

    steps: int = Field(40, ge=1, strict=True)
    learning_rate: float = Field(2e-3, gt=0, allow_inf_nan=False)
    # Book-keeping clipping is exact on this model family (Linear, Embedding, LayerNorm only)
    # and the fastest on CPU: see benchmarks/RESULTS.md.
    backend: Backend = "bk"


_LEARNED = LearnedTokenizerConfig()


class LearnedTokenizerSettings(BaseModel):
    """The learned tokenizer's fields (``tokenizer: learned``), with the defaults of
    :class:`isoeps.models.learned_tokenizer.LearnedTokenizerConfig` (the trade-off measured
    in benchmarks/RESULTS.md, "A learned spectral tokenizer")."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fsq_levels: tuple[int, ...] = Field(
        _LEARNED.fsq_levels,
        min_length=1,
        description="FSQ values per latent channel; their product is the vocabulary per scale",
    )
    width: int = Field(_LEARNED.width, ge=8, multiple_of=8)
    blocks: int = Field(_LEARNED.blocks, ge=0)
    steps: int = Field(_LEARNED.steps, ge=1)
    batch_size: int = Field(_LEARNED.batch_size, ge=1)
    learning_rate: float = Field(_LEARNED.learning_rate, gt=0, allow_inf_nan=False)


#: The fields each tokenizer leaves out of the public cache key: the other tokenizer's. The
#: k-means key is the one it had before the learned tokenizer existed, so cached and shipped
#: k-means models keep their keys.
_UNUSED_BY_TOKENIZER = {
    "kmeans": ("tokenizer", "learned_tokenizer"),
    "learned": ("codebook_size", "kmeans_iters"),
}


class ARFamilyConfig(MethodConfig):
    """Fields of the AR family. The public part (tokenizer, model, pretraining, SR) forms the
    public cache key; the private part (``dp_sgd``, sampling) does not."""

    # spectral tokenizer (public)
    tokenizer: Literal["kmeans", "learned"] = public_field(
        "kmeans", description="k-means codebooks over Haar patches, or the learned (FSQ) one"
    )
    levels: int = public_field(2, ge=1, description="Haar levels L (L + 1 scales)")
    base_patch: int = public_field(2, ge=1, description="patch side on the two coarsest scales")
    codebook_size: int = public_field(512, ge=2, description="k-means codes per scale")
    kmeans_iters: int = public_field(20, ge=1)
    learned_tokenizer: LearnedTokenizerSettings = public_field(LearnedTokenizerSettings())
    tokenizer_images: int = public_field(
        4000, ge=1, description="public images the tokenizer is fitted on"
    )
    # AR transformer (public)
    text_encoder: str = public_field("minilm")
    text_mode: Literal["pooled", "tokens"] = public_field("pooled")
    text_len: int = public_field(24, ge=1, description="text tokens kept in 'tokens' mode")
    prefix_len: int = public_field(4, ge=1, description="prefix slots in 'pooled' mode")
    dim: int = public_field(128, ge=8)
    depth: int = public_field(4, ge=1)
    heads: int = public_field(4, ge=1)
    mlp_ratio: int = public_field(4, ge=1)
    pretrain_steps: int = public_field(
        1500,
        ge=0,
        description="public AR steps; 0 trains the AR model from scratch, on private data alone",
    )
    pretrain_batch_size: int = public_field(64, ge=1)
    pretrain_learning_rate: float = public_field(1e-3, gt=0)
    cond_dropout: float = public_field(0.1, ge=0, lt=1, description="caption dropout (for CFG)")
    # wavelet SR net (public)
    sr_width: int = public_field(64, ge=8)
    sr_blocks: int = public_field(2, ge=1)
    sr_steps: int = public_field(600, ge=1)
    sr_batch_size: int = public_field(64, ge=1)
    sr_learning_rate: float = public_field(2e-3, gt=0)
    # private finetune
    dp_sgd: ARDPSGDConfig = private_field(ARDPSGDConfig())
    # sampling
    temperature: float = private_field(1.0, ge=0)
    top_k: int = private_field(0, ge=0, description="0 = no top-k truncation")
    cfg_scale: float = private_field(1.5, ge=0, description="classifier-free guidance; 1 = off")
    sample_batch_size: int = private_field(256, ge=1)


class ARFamilyMethod(Method):
    """Public pretraining, DP finetune and sampling shared by the AR family."""

    Config: ClassVar[type[MethodConfig]] = ARFamilyConfig

    config: ARFamilyConfig

    def __init__(self, config: Any = None, *, ctx: Any) -> None:
        super().__init__(config, ctx=ctx)
        self.tokenizer: SpectralTokenizerBase | None = None
        self.public_model: ScaleCausalTransformer | None = None
        self.sr: WaveletSR | None = None
        self.model: ScaleCausalTransformer | None = None
        self.pretrain_report: dict[str, Any] = {}
        self.train_report: DPTrainReport | None = None
        self._encoder: TextEncoder | None = None

    # -- what subclasses decide -------------------------------------------------------------
    def private_scales(self) -> int:
        """How many of the coarsest scales the private finetune trains on."""
        raise NotImplementedError

    # -- config helpers -----------------------------------------------------------------------
    def tokenizer_config(self) -> SpectralGeometry:
        c = self.config
        if c.tokenizer == "learned":
            return LearnedTokenizerConfig(
                levels=c.levels, base_patch=c.base_patch, **c.learned_tokenizer.model_dump()
            )
        return TokenizerConfig(
            levels=c.levels,
            base_patch=c.base_patch,
            codebook_size=c.codebook_size,
            kmeans_iters=c.kmeans_iters,
        )

    def dp_config(self) -> DPSGDConfig:
        return self.config.dp_sgd

    def public_cache_key(self) -> dict[str, Any]:
        """Family-wide: both AR methods and every epsilon share one public model."""
        return {
            "family": "spectral-ar",
            "version": FAMILY_VERSION,
            "config": {
                name: value
                for name, value in self.config.public_part().items()
                if name not in _UNUSED_BY_TOKENIZER[self.config.tokenizer]
            },
        }

    def check_resolution(self, resolution: int) -> None:
        try:
            self.tokenizer_config().check_resolution(resolution)
        except ValueError as err:
            raise ConfigError(
                f"{self.name}: levels={self.config.levels}, base_patch={self.config.base_patch}: "
                f"{err}"
            ) from err

    @property
    def encoder(self) -> TextEncoder:
        if self._encoder is None:
            self._encoder = load_text_encoder(self.config.text_encoder, device="cpu")
        return self._encoder

    def featurize(self, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Frozen text features; an empty caption conditions on nothing: it gets the all-False
        mask, the null condition that caption dropout trains."""
        text, mask = text_features(
            self.encoder, captions, mode=self.config.text_mode, length=self.config.text_len
        )
        named = torch.tensor([caption != NULL_CAPTION for caption in captions], dtype=torch.bool)
        return text, mask & named.reshape(-1, 1)

    def _require_public(self) -> None:
        if self.tokenizer is None or self.public_model is None or self.sr is None:
            raise RuntimeError(
                f"{self.name}: no public models; call pretrain_public() or load_public() first"
            )

    # -- public pretraining -------------------------------------------------------------------
    def pretrain_public(self, public: ImageSplit) -> None:
        """Fit the tokenizer, the AR transformer and the SR net on the PUBLIC split."""
        self.check_resolution(public.resolution)
        c = self.config
        log = self.ctx.logger
        seed = c.pretrain_seed
        tokenizer, psnr = fit_tokenizer(
            public,
            config=self.tokenizer_config(),
            seed=seed,
            max_images=c.tokenizer_images,
            logger=log,
            show_progress=self.ctx.show_progress,
            device=self.ctx.device,
        )
        log.info("tokenizer PSNR per scale (public): %s", _fmt(psnr))
        tokens = tokenize(tokenizer, public.images)
        torch.manual_seed(seed)  # parameter init of the new modules below
        model = self._build_model(tokenizer)
        ar_losses = train_ar(
            model,
            tokens=tokens,
            captions=public.captions,
            featurize=self.featurize,
            steps=c.pretrain_steps,
            batch_size=c.pretrain_batch_size,
            learning_rate=c.pretrain_learning_rate,
            cond_dropout=c.cond_dropout,
            seed=seed + 1,
            logger=log,
            show_progress=self.ctx.show_progress,
            device=self.ctx.device,
        )
        sr = WaveletSR(levels=c.levels, width=c.sr_width, blocks=c.sr_blocks)
        sr_losses = train_sr(
            sr,
            images=public.images,
            steps=c.sr_steps,
            batch_size=c.sr_batch_size,
            learning_rate=c.sr_learning_rate,
            seed=seed + 2,
            logger=log,
            show_progress=self.ctx.show_progress,
            device=self.ctx.device,
        )
        self.tokenizer, self.public_model, self.sr = tokenizer, model, sr
        self.model = model
        self.pretrain_report = {
            "tokenizer_psnr": psnr,
            # None when the AR model is trained from scratch (pretrain_steps 0)
            "ar_final_loss": float(np.mean(ar_losses[-20:])) if ar_losses else None,
            "sr_final_loss": float(np.mean(sr_losses[-20:])),
            "public_images": len(public),
        }

    def _build_model(self, tokenizer: SpectralTokenizerBase) -> ScaleCausalTransformer:
        c = self.config
        return ScaleCausalTransformer(
            ARConfig(
                vocab_sizes=(tokenizer.vocab_size,) * tokenizer.num_scales,
                tokens_per_scale=tokenizer.tokens_per_scale,
                text_dim=self.encoder.dim,
                text_mode=c.text_mode,
                prefix_len=c.prefix_len,
                dim=c.dim,
                depth=c.depth,
                heads=c.heads,
                mlp_ratio=c.mlp_ratio,
            )
        ).eval()

    def save_public(self, directory: Path) -> None:
        self._require_public()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        torch.save(
            {
                "tokenizer": self.tokenizer.state_dict(),
                "ar": self.public_model.state_dict(),
                "sr": self.sr.state_dict(),
            },
            directory / PUBLIC_FILE,
        )
        meta = {
            "cache_key": self.public_cache_key(),
            "resolution": self.tokenizer.resolution,
            "pretrain_report": self.pretrain_report,
        }
        (directory / META_FILE).write_text(json.dumps(meta, indent=2, default=str))

    def load_public(self, directory: Path) -> None:
        directory = Path(directory)
        meta_path, weights_path = directory / META_FILE, directory / PUBLIC_FILE
        if not meta_path.is_file() or not weights_path.is_file():
            raise FileNotFoundError(
                f"{self.name}: no public models in {directory} (need {META_FILE}, {PUBLIC_FILE})"
            )
        meta = json.loads(meta_path.read_text())  # the harness checked the cache key
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
        tokenizer = build_tokenizer(self.tokenizer_config(), resolution=int(meta["resolution"]))
        tokenizer.load_state_dict(state["tokenizer"])
        model = self._build_model(tokenizer)
        model.load_state_dict(state["ar"])
        sr = WaveletSR(
            levels=self.config.levels, width=self.config.sr_width, blocks=self.config.sr_blocks
        )
        sr.load_state_dict(state["sr"])
        self.tokenizer, self.public_model, self.sr = tokenizer, model, sr.eval()
        self.model = model
        self.pretrain_report = meta.get("pretrain_report", {})

    # -- private finetune ---------------------------------------------------------------------
    def collate(self, records: ImageSplit | list, rngs: list[np.random.Generator]) -> dict:
        """One Poisson chunk -> tensors: one random caption per record (each record's own
        generator in ``rngs``, keyed to its id by the guard), images
        tokenised by the frozen public tokenizer up to :meth:`private_scales`.

        Args:
            records: one Poisson chunk of private records (the guard's view), each with its
                image and captions.
            rngs: one generator per record, in the order of ``records``; it picks the record's
                caption and its condition dropout.

        Returns:
            ``tokens`` (the token ids of the first :meth:`private_scales` scales), ``text`` and
            ``text_mask`` (the caption features, the mask after condition dropout).
        """
        images, captions = _images_and_captions(records)
        per = self.tokenizer.tokens_per_scale
        scales = self.private_scales()
        if len(images):
            tokens = self.tokenizer.encode(to_float(images), num_scales=scales)
        else:
            tokens = torch.zeros(0, scales * per, dtype=torch.long)
        text, mask = self.featurize(pick_captions(captions, rngs))
        return {
            "tokens": tokens.contiguous(),
            "text": text,
            "text_mask": drop_conditions(mask, self.config.cond_dropout, rngs),
        }

    def trainable(self, model: ScaleCausalTransformer) -> list[str]:
        """Only parameters the trained scales use: noise on unused ones would be pointless."""
        return model.scale_parameter_names(range(self.private_scales()))

    def plan(self, budget: PrivacyBudget, num_records: int) -> dict[str, Any] | None:
        """The DP-SGD plan (q, T, calibrated sigma, achieved epsilon) ``fit`` would follow.

        Args:
            budget: the cell's privacy budget.
            num_records: how many private records ``fit`` would see.

        Returns:
            The plan as a dict (:meth:`DPPlan.to_dict`); None in a ``public`` cell.
        """
        if budget.mode == "public":
            return None
        return plan_dp_sgd(
            config=self.dp_config(), budget=budget, num_records=num_records
        ).to_dict()

    def fit(self, private: PrivateData | None, budget: PrivacyBudget) -> FitReport:
        """``public``: keep the public model, touch nothing. ``private``/``inf``: finetune a
        copy of the public AR model with the shared DP-SGD engine (which owns clipping, noise
        and the ledger) on the tokens of the first :meth:`private_scales` scales.

        Args:
            private: the guard over the private records; unused (and may be a
                :class:`~isoeps.privacy.public_only.NoPrivateData`) in a ``public`` cell.
            budget: the cell's privacy budget; its mode picks which of the above happens.

        Returns:
            What was done: steps, sigma, q, C and wall time of the DP-SGD run, or mode
            ``public`` alone.

        Raises:
            ValueError: a ``private``/``inf`` budget with ``private`` None, or a budget mode the
                method does not support.
            RuntimeError: no public models yet (call :meth:`pretrain_public` or
                :meth:`load_public` first).
        """
        self.check_budget(budget)
        self._require_public()
        if budget.mode == "public":
            self.model = self.public_model
            self.train_report = None
            return FitReport(mode="public")
        if private is None:
            raise ValueError(f"{self.name}: budget {budget.label!r} needs private data")
        model = copy.deepcopy(self.public_model)
        self.train_report = train_dp_sgd(
            guard=private,
            module=model,
            loss_fn=per_example_loss,
            collate=self.collate,
            config=self.dp_config(),
            budget=budget,
            trainable=self.trainable(model),
            device=self.ctx.device,
            logger=self.ctx.logger,
            show_progress=self.ctx.show_progress,
        )
        self.model = model.to("cpu").eval()
        return _fit_report(budget, self.train_report)

    # -- sampling -----------------------------------------------------------------------------
    def generate_tokens(
        self,
        model: ScaleCausalTransformer,
        prompts: list[str],
        *,
        num_scales: int,
        prefix_tokens: torch.Tensor | None = None,
        generator: torch.Generator,
    ) -> torch.Tensor:
        """Tokens of the first ``num_scales`` scales for each prompt, in chunks.

        Args:
            model: the AR transformer to sample from (public or finetuned).
            prompts: one caption per image.
            num_scales: how many scales to generate, coarsest first.
            prefix_tokens: ``(len(prompts), m)`` leading tokens kept as given, which the model
                continues (coarse-to-fine upsampling); None to start from nothing.
            generator: the torch generator of every draw.

        Returns:
            Token ids ``(len(prompts), num_scales * tokens_per_scale)``.
        """
        c = self.config
        parts = []
        for start in range(0, len(prompts), c.sample_batch_size):
            chunk = prompts[start : start + c.sample_batch_size]
            text, mask = self.featurize(chunk)
            parts.append(
                model.generate(
                    text=text,
                    text_mask=mask,
                    num_scales=num_scales,
                    prefix_tokens=(
                        None
                        if prefix_tokens is None
                        else prefix_tokens[start : start + c.sample_batch_size]
                    ),
                    temperature=c.temperature,
                    top_k=c.top_k,
                    cfg_scale=c.cfg_scale,
                    generator=generator,
                )
            )
        return torch.cat(parts, dim=0)

    def full_resolution(
        self, tokens: torch.Tensor, *, prompts: list[str], generator: torch.Generator
    ) -> torch.Tensor:
        """Float images from tokens of the first ``private_scales()`` scales, generated for
        ``prompts`` (subclasses choose how finer scales are obtained).

        Args:
            tokens: token ids of the first ``private_scales()`` scales, one row per image.
            prompts: the caption each row was generated for.
            generator: the torch generator for any further draws.

        Returns:
            Float images in [-1, 1], ``(N, 3, H, W)`` at full resolution.
        """
        raise NotImplementedError

    def sample(self, prompts: list[str], n: int) -> Samples:
        """``n`` full-resolution images, cycling through ``prompts``.

        Args:
            prompts: the captions, used in turn; at least one.
            n: how many images.

        Returns:
            The images, with the caption of each as its prompt and eval caption.

        Raises:
            ValueError: ``prompts`` is empty.
            RuntimeError: no public models yet.
        """
        self._require_public()
        if not prompts:
            raise ValueError(f"{self.name}: sample() needs at least one prompt")
        chosen = [prompts[i % len(prompts)] for i in range(n)]
        generator = self.ctx.torch_generator("sampling")
        tokens = self.generate_tokens(
            self.model, chosen, num_scales=self.private_scales(), generator=generator
        )
        images = to_uint8(self.full_resolution(tokens, prompts=chosen, generator=generator))
        return Samples(images=images, prompts=chosen, eval_captions=list(chosen))

    def sample_unconditional(self, n: int) -> Samples:
        """``n`` images from the null condition (the empty caption, fully masked)."""
        samples = self.sample([NULL_CAPTION], n)
        return Samples(
            images=samples.images, prompts=[OPEN_PROMPT] * n, eval_captions=[OPEN_PROMPT] * n
        )


def _images_and_captions(records: ImageSplit | list) -> tuple[np.ndarray, list]:
    if isinstance(records, ImageSplit):
        return records.images, records.captions
    records = list(records)
    if not records:
        return np.zeros((0, 3, 1, 1), dtype=np.uint8), []
    return np.stack([r.image for r in records]), [list(r.captions) for r in records]


def _fmt(values: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.2f}" for k, v in values.items())


def _fit_report(budget: PrivacyBudget, train: DPTrainReport) -> FitReport:
    plan = train.plan
    return FitReport(
        mode=budget.mode,
        steps=train.steps_done,
        noise_multiplier=plan.noise_multiplier,
        sample_rate=plan.sample_rate,
        clip_norm=plan.clip_norm if plan.is_private else None,
        wall_time_s=train.wall_time_s,
        details={
            "backend": train.backend,
            "expected_batch_size": plan.expected_batch_size,
            "planned_epsilon": plan.epsilon,
        },
    )
