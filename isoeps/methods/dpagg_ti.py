"""DPAgg-TI (arXiv 2411.14639): one private token from aggregated textual inversions.

A public text-to-image diffusion model (the tiny pixel-space UNet of
:mod:`isoeps.models.diffusion`, pretrained here on public data, or a local Stable Diffusion
folder) stays frozen. ``fit`` spends one subsampled Gaussian release through the guard:

1. the guard Poisson-subsamples the private records at rate ``q`` (so only about ``q N``
   records are ever inverted: the cost follows ``q N``, not ``N``);
2. each sampled image gets its own textual-inversion vector for the placeholder token, all
   learned side by side (:func:`isoeps.models.textual_inversion.invert_tokens`);
3. the guard clips each vector's offset from the public initialisation to norm ``C``, sums,
   adds N(0, sigma^2 C^2) and divides by the constant ``q N``; sigma comes from
   :func:`isoeps.accountants.calibrate` with one step (add/remove adjacency, sensitivity C).

With ``group_size`` g > 1 (groups assigned by a hash of the record id, the only assignment
allowed), the same release runs over G = ``num_groups`` groups, a number fixed in the config
and never computed from the private N, through :meth:`PrivateData.aggregate_groups`: groups
are Poisson-sampled at rate q, the images of each sampled group share one new token learned on
all of them, each group's offset is clipped to C, and the sum is divided by the constant
``q G``. Adding or removing one image moves only its own group's offset (by up to 2C; the
argument is written out in ``aggregate_groups``): replace-one adjacency of one group,
calibrated and accounted by ``pld`` (``prv`` cannot account it). The noise std stays sigma C: dp-accounting's REPLACE_ONE
relation already accounts the 2C shift (see
:class:`isoeps.accountants.mechanisms.SubsampledGaussian`).

The private token is the public initialisation plus that noisy mean offset. Samples use the
prompt template with the token; each sample's ``eval_caption`` is the plain caption.

Budgets: ``inf`` runs the same release through the guard (the same Poisson subsample of
records or groups) without clipping or noise, and averages by the realised count; ``public`` never touches the
private data and samples from plain captions.

Free choices and their defaults (the paper's abstract does not fix them):

- ``prompt_template = "a photo of <s*>, {caption}"``: the record's own caption stays in the
  prompt, so the token learns what the captions do not say (the private style); at sampling
  the same template wraps the evaluation captions.
- ``init_word = "photo"``: a neutral, public starting point for every vector.
- aggregation of ``v_i - init`` rather than ``v_i``: the offset is what the data taught, and
  the public centre is added back after the release (post-processing).
- ``clip_norm C = 2.0``: slightly below the typical offset norm after inversion, so most
  offsets are normalised to a common length (the paper's normalisation) while the token stays
  comparable to a word embedding; the measured norms are in benchmarks/RESULTS.md ("DPAgg-TI:
  the defaults' measurements").
- ``expected_records = 128`` (q = 128 / N): inversion cost follows q N, so a few hundred
  records at most keep a CPU cell short, while the noise on the mean, sigma C sqrt(d) / (q N),
  stays below the signal at epsilon >= 1 (costs in the same section).
- ``group_size = 1``: one image per embedding, add/remove adjacency, the primary ``prv``
  accountant. g > 1 averages each token over g images (less per-image noise in each vector)
  but costs replace-one accounting; q is ``expected_records / (g G)`` per group, so about
  ``expected_records`` images (``expected_records / g`` groups) are inverted when N is near
  g G.
- ``group_assignment = "hash"``: sha256 of the record id mod G
  (:func:`isoeps.privacy.guard.group_of`), a function of each record alone, so that one image
  can only change its own group; any data-dependent grouping is refused.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import field_validator

from isoeps.accountants import (
    CalibrationError,
    Ledger,
    PrivacyBudget,
    SubsampledGaussian,
    calibrate,
    epsilon,
    primary_accountant,
)
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
)
from isoeps.privacy.guard import PrivateData

PUBLIC_FILE = "dpagg_ti.json"
TOKEN_MARK = "<s*>"


class DPAggTIConfig(PublicDiffusionConfig):
    """Configuration of :class:`DPAggTI`. Every default is explained in the module docstring;
    the public model's fields are :class:`PublicDiffusionConfig`'s."""

    # -- the private release ------------------------------------------------------------------
    clip_norm: float = private_field(
        2.0, gt=0, description="C: bound on each record's token offset"
    )
    expected_records: int = private_field(
        128, ge=1, description="q N, the expected subsample size (q = this / N)"
    )
    sample_rate: float | None = private_field(
        None, gt=0, le=1, description="q; overrides expected_records when set"
    )
    group_size: int = private_field(
        1,
        ge=1,
        description="nominal images per embedding; > 1 groups records into "
        "num_groups hash groups (replace-one adjacency of a group, 2C)",
    )
    num_groups: int | None = private_field(
        None,
        ge=1,
        description="G, the number of hash groups when group_size > 1: fixed "
        "here, never derived from the private N (set it to about N_expected / group_size)",
    )
    group_assignment: str = private_field(
        "hash", description="how records form groups when group_size > 1 ('hash' of the id)"
    )
    max_noise_multiplier: float = private_field(
        50.0, gt=0, description="refuse an epsilon that needs more noise than this sigma"
    )
    # -- textual inversion --------------------------------------------------------------------
    ti_steps: int = private_field(30, ge=1, description="Adam steps per token vector")
    ti_learning_rate: float = private_field(0.02, gt=0)
    ti_chunk_size: int = private_field(64, ge=1, description="records inverted side by side")
    init_word: str = private_field(
        "photo", description="public initial value of every token vector"
    )
    prompt_template: str = private_field(
        f"a photo of {TOKEN_MARK}, {{caption}}",
        description="prompt with the private token; {caption} is the plain caption",
    )

    @field_validator("prompt_template")
    @classmethod
    def _template_has_token_and_caption(cls, value: str) -> str:
        if TOKEN_MARK not in value or "{caption}" not in value:
            raise ValueError(
                f"prompt_template must contain {TOKEN_MARK!r} and '{{caption}}', got {value!r}"
            )
        return value


class DPAggTI(Method):
    """DP aggregation of per-image textual inversions into one private token."""

    name: ClassVar[str] = "dpagg-ti"
    description: ClassVar[str] = (
        "DPAgg-TI: per-image textual inversion on a frozen public text-to-image diffusion "
        "model, aggregated by one subsampled Gaussian release"
    )
    Config: ClassVar[type[MethodConfig]] = DPAggTIConfig
    # 2: public pretraining seeded from pretrain_seed, not from the first cell's seed.
    version: ClassVar[str] = "2"

    config: DPAggTIConfig

    def __init__(self, config: Any = None, *, ctx: Any) -> None:
        super().__init__(config, ctx=ctx)
        self.model: Any = None
        self.token: Any = None  # torch (dim,) vector, or None for plain captions
        self.report: dict[str, Any] = {}

    # -- public model -------------------------------------------------------------------------
    def pretrain_public(self, public: Any) -> None:
        self.model = train_public_diffusion(
            self.config, public, ctx=self.ctx, progress=self._progress
        )

    def save_public(self, directory: Path) -> None:
        save_public_diffusion(
            self.config, self.model, directory, marker=PUBLIC_FILE, method=self.name
        )

    def load_public(self, directory: Path) -> None:
        self.model = load_public_diffusion(
            self.config, directory, marker=PUBLIC_FILE, method=self.name, device=self.ctx.device
        )

    # -- the private release ------------------------------------------------------------------
    def sample_rate_for(self, num_records: int) -> float:
        """q: ``sample_rate`` if set; else ``expected_records / N`` per record, or, with groups,
        ``expected_records / (group_size G)`` per group, from public configuration alone
        (at most 1)."""
        if self.config.sample_rate is not None:
            return float(self.config.sample_rate)
        if self.config.group_size > 1:
            slots = self.config.group_size * (self.config.num_groups or 1)
            return min(1.0, self.config.expected_records / slots)
        return min(1.0, self.config.expected_records / num_records)

    def noise_multiplier_for(self, budget: PrivacyBudget, sample_rate: float) -> float:
        """sigma for one subsampled Gaussian release at ``budget`` (replace-one through
        ``pld`` when ``group_size > 1``); a clear error when the target needs more noise than
        ``max_noise_multiplier``.

        Args:
            budget: the cell's privacy budget (its epsilon and delta).
            sample_rate: q of the release, per record or, with groups, per group.

        Returns:
            The noise multiplier sigma that meets ``budget``.

        Raises:
            ConfigError: the target needs a sigma above ``max_noise_multiplier``.
        """
        adjacency = "replace_one" if self.config.group_size > 1 else "add_remove"
        try:
            return calibrate(
                budget.epsilon,
                budget.delta,
                sample_rate,
                1,
                primary_accountant(adjacency),
                max_noise_multiplier=self.config.max_noise_multiplier,
                adjacency=adjacency,
            )
        except CalibrationError as error:
            raise ConfigError(
                f"dpagg-ti: epsilon={budget.epsilon:g} (delta={budget.delta:.3g}) with "
                f"q={sample_rate:.4g} needs noise_multiplier > max_noise_multiplier="
                f"{self.config.max_noise_multiplier:g}: the noisy mean token would be mostly "
                "noise. Raise expected_records (q N) or epsilon, or max_noise_multiplier "
                "if you mean it"
            ) from error

    def plan(self, budget: PrivacyBudget, num_records: int) -> dict[str, Any] | None:
        """The one aggregation release ``fit`` would make: q, sigma, C and the achieved
        epsilon under the accountant that applies to its adjacency.

        Args:
            budget: the cell's privacy budget.
            num_records: how many private records ``fit`` would see.

        Returns:
            ``sample_rate``, ``steps``, ``clip_norm``, ``expected_records`` and ``group_size``,
            plus ``noise_multiplier`` and ``epsilon`` (keyed by accountant) in a ``private``
            cell; None in a ``public`` cell.
        """
        if budget.mode == "public":
            return None
        self._check_groups()
        sample_rate = self.sample_rate_for(num_records)
        plan: dict[str, Any] = {
            "sample_rate": sample_rate,
            "steps": 1,
            "clip_norm": self.config.clip_norm,
            "expected_records": sample_rate * num_records,
            "group_size": self.config.group_size,
        }
        if budget.mode == "private":
            sigma = self.noise_multiplier_for(budget, sample_rate)
            grouped = self.config.group_size > 1
            mechanism = SubsampledGaussian(
                sigma, sample_rate, 1, adjacency="replace_one" if grouped else "add_remove"
            )
            accountant = primary_accountant(mechanism.adjacency)
            plan["noise_multiplier"] = sigma
            plan["epsilon"] = {accountant: epsilon(Ledger([mechanism]), budget.delta, accountant)}
        return plan

    def _check_groups(self) -> None:
        if self.config.group_size == 1:
            return
        if self.config.group_assignment != "hash":
            raise ConfigError(
                f"dpagg-ti: group_size={self.config.group_size} needs groups assigned by a hash "
                f"of the record id (group_assignment='hash'), got "
                f"group_assignment={self.config.group_assignment!r}: any data-dependent grouping "
                "breaks the replace-one (sensitivity 2C) accounting"
            )
        if self.config.num_groups is None:
            raise ConfigError(
                f"dpagg-ti: group_size={self.config.group_size} needs num_groups, the number "
                "of hash groups G, fixed in the config: a G computed from the private N "
                "(ceil(N / g)) moves almost every record to another group when one image is "
                "added, far past the 2C the accounting assumes"
            )

    def fit(self, private: PrivateData | None, budget: PrivacyBudget) -> FitReport:
        """Learn the private token with one noisy, clipped mean release through the guard.

        ``public`` keeps no token; ``inf`` makes the release without noise.

        Args:
            private: the guard over the private records; unused in a ``public`` cell.
            budget: the cell's privacy budget; its mode picks what happens.

        Returns:
            Mode, sigma, q and C of the release, the rest of the report in ``details``.

        Raises:
            ConfigError: no public model yet, a ``private``/``inf`` budget with ``private``
                None, or a target that needs more noise than ``max_noise_multiplier``.
        """
        started = time.perf_counter()
        self.check_budget(budget)
        self._check_groups()
        if self.model is None:
            raise ConfigError("dpagg-ti: fit before pretrain_public/load_public")
        if budget.mode == "public":
            self.token = None
            self.report = {"mode": "public"}
            return FitReport(mode="public")
        if private is None:
            raise ConfigError(f"dpagg-ti: budget {budget.mode!r} needs private data")
        import torch

        init = self.model.text_encoder.token_embedding(self.config.init_word).cpu()
        sample_rate = self.sample_rate_for(len(private))
        sigma = self.noise_multiplier_for(budget, sample_rate) if budget.is_private else None
        release = self._release(private, sample_rate, sigma, init)
        offset = release.value
        self.report = {
            "mode": budget.mode,
            "sample_rate": sample_rate,
            "noise_multiplier": sigma,
            "clip_norm": self.config.clip_norm,
            "noise_std": release.noise_std,
            "group_size": self.config.group_size,
            "num_groups": self.config.num_groups if self.config.group_size > 1 else None,
            "adjacency": "replace_one" if self.config.group_size > 1 else "add_remove",
        }
        # An inf release's count of sampled records is left out: the report holds no
        # statistic of the private data, noised or not.
        if sigma is not None:
            self.report["divisor"] = release.divisor
            self.ctx.logger.info(
                "dpagg-ti: one release, sigma=%.4g q=%.4g C=%g g=%d",
                sigma,
                sample_rate,
                self.config.clip_norm,
                self.config.group_size,
            )
        self.token = init + torch.as_tensor(offset, dtype=init.dtype)
        self.report["token_offset_norm"] = float(np.linalg.norm(offset))
        top = {"mode", "noise_multiplier", "sample_rate", "clip_norm"}
        return FitReport(
            **{k: self.report[k] for k in top},
            steps=1,
            wall_time_s=time.perf_counter() - started,
            details={k: v for k, v in self.report.items() if k not in top},
        )

    def _release(
        self, private: PrivateData, sample_rate: float, sigma: float | None, init: Any
    ) -> Any:
        """The guard's release, per record (g = 1) or per hashed group (g > 1); ``sigma``
        None is the ``inf`` twin (same sampling, no clipping or noise, plain mean)."""
        common = {
            "dim": int(init.shape[0]),
            "sample_rate": sample_rate,
            "clip_norm": self.config.clip_norm,
            "noise_multiplier": sigma,
        }
        if self.config.group_size == 1:
            return private.aggregate(
                lambda records: self._offsets(private, records, init),
                note="dpagg-ti token",
                **common,
            )
        return private.aggregate_groups(
            lambda records, groups: self._offsets(private, records, init, groups=groups),
            num_groups=self.config.num_groups,
            note=f"dpagg-ti token, {self.config.num_groups} hash groups",
            **common,
        )

    def _offsets(
        self, private: PrivateData, records: Any, init: Any, *, groups: np.ndarray | None = None
    ) -> np.ndarray:
        """Textual inversion of each record, or of each group when ``groups`` labels each
        record's group (0..k-1); returns ``(k, dim)`` offsets from ``init``. A record's
        caption, timesteps and noise come from its own seed (keyed to its id by the guard)."""
        from isoeps.models.textual_inversion import InversionSettings, invert_tokens
        from isoeps.privacy.record_streams import record_generators, record_torch_generators

        seeds = private.record_seeds(records.ids, purpose="dpagg-ti/caption")
        prompts = [
            self._prompt(captions[int(rng.integers(len(captions)))])
            for captions, rng in zip(records.captions, record_generators(seeds), strict=True)
        ]
        noise_seeds = private.record_seeds(records.ids, purpose="dpagg-ti/inversion")
        settings = InversionSettings(
            steps=self.config.ti_steps,
            learning_rate=self.config.ti_learning_rate,
            chunk_size=self.config.ti_chunk_size,
        )
        vectors = invert_tokens(
            self.model,
            images=records.images,
            prompts=prompts,
            init=init,
            settings=settings,
            generators=record_torch_generators(noise_seeds),
            progress=self._progress,
            groups=groups,
        )
        return (vectors - init).numpy().astype(np.float64)

    # -- sampling -----------------------------------------------------------------------------
    def sample(self, prompts: list[str], n: int) -> Samples:
        """``n`` images, cycling through ``prompts``, with the private token when one was learned.

        Args:
            prompts: the captions, used in turn; at least one.
            n: how many images.

        Returns:
            The images; ``prompts`` hold the full prompts given to the model (with the token),
            ``eval_captions`` the captions alone.

        Raises:
            ConfigError: no public model yet, or ``prompts`` is empty.
        """
        if self.model is None:
            raise ConfigError("dpagg-ti: sample before pretrain_public/load_public")
        if not prompts:
            raise ConfigError("dpagg-ti: sample needs at least one prompt")
        captions = [prompts[i % len(prompts)] for i in range(n)]
        full = [self._prompt(c) for c in captions] if self.token is not None else list(captions)
        return Samples(images=self._generate(full), prompts=full, eval_captions=captions)

    def _generate(self, prompts: list[str]) -> Any:
        """uint8 images, one per prompt, from the sampling stream."""
        return self.model.sample(
            prompts,
            generator=self.ctx.torch_generator("sampling"),
            steps=self.config.sampler_steps,
            guidance_scale=self.config.guidance_scale,
            token_vector=self.token,
            batch_size=self.config.sample_batch_size,
        )

    def sample_unconditional(self, n: int) -> Samples:
        """``n`` images from the private token alone (the template without its caption and
        the separators before it); the public model's unconditional prompt without a token."""
        from isoeps.models.diffusion import UNCONDITIONAL

        prompt = (
            self.config.prompt_template.replace("{caption}", "").strip(" ,;:")
            if self.token is not None
            else UNCONDITIONAL
        )
        samples = self._generate([prompt] * n)
        return Samples(images=samples, prompts=[prompt] * n, eval_captions=[OPEN_PROMPT] * n)

    def _prompt(self, caption: str) -> str:
        """The template around ``caption``."""
        return self.config.prompt_template.replace("{caption}", caption)
