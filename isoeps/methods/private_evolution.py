"""Private Evolution (Lin et al. 2024, arXiv 2305.15560; microsoft/DPSDA is the reference).

No DP training: a frozen public text-to-image diffusion model (the public model of
:mod:`isoeps.methods._public_diffusion`, as DPAgg-TI has, or a local Stable Diffusion folder)
makes a population, and the private images steer it by noisy nearest-neighbour votes.

1. RANDOM_API: ``population_size`` samples per class from the public model (the class prompt
   when ``class_prompts`` is set, the unconditional prompt otherwise).
2. Each of T = ``iterations`` rounds:

   - every private image votes for its nearest population member (of its own class) in a
     public embedding space (:mod:`isoeps.models.embedders`, ``pixel-pca``: fitted on public
     images only, and not a metric's backbone);
   - the guard releases the vote histogram with Gaussian noise: one
     :meth:`~isoeps.privacy.guard.PrivateData.aggregate` at q = 1 whose vectors are the
     one-hot votes (L2 norm 1, so C = 1 is the add/remove sensitivity and clipping never
     binds); the released mean times the public N is the noisy histogram;
   - counts below ``threshold`` x the noise std are zeroed (DPSDA's threshold);
   - ``population_size`` members per class are drawn with replacement in proportion to the
     counts (uniformly in a class whose counts are all zero);
   - VARIATION_API: each drawn member is varied by SDEdit at ``variation_strength``
     (:meth:`~isoeps.models.diffusion.TextDiffusion.vary`), and that is the next population.

   Everything after the release is post-processing.
3. The population after the last round is the synthetic data; ``sample`` returns its members.

sigma comes from :func:`isoeps.accountants.calibrate` for T compositions of a Gaussian of
sensitivity 1 (no subsampling), with the primary accountant; the ledger holds the T releases.

Class-conditional PE (DPSDA's default for labelled data) runs when ``class_prompts`` lists
one prompt per class: a private record's class is the first of its captions found among them
(Fashion-MNIST's captions are its class prompts), it votes only within its class's population,
and all classes' votes form one histogram, so one record still moves one count. ``sample``
then takes each prompt's members from its class and refuses any other prompt. Without
``class_prompts`` PE is unconditional: the prompts given to ``sample`` are recorded as the
captions the samples are scored against, though the model never saw them, so caption-following
metrics show that PE does not follow captions.

Budgets: ``inf`` makes the same votes through the guard without noise (and no threshold);
``public`` returns the RANDOM_API population without reading any private record.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

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
    public_field,
)
from isoeps.privacy.guard import PrivateData

PUBLIC_FILE = "private_evolution.json"


class PrivateEvolutionConfig(PublicDiffusionConfig):
    """Configuration of :class:`PrivateEvolution` (the public model's fields are
    :class:`PublicDiffusionConfig`'s)."""

    # -- the public embedder ------------------------------------------------------------------
    embedding_dim: int = public_field(64, ge=1, description="principal components kept")
    embedding_size: int = public_field(
        16, ge=1, description="side the images are resized to before the projection"
    )
    embedder_images: int = public_field(
        5000, ge=2, description="public images the projection is fitted on (at most)"
    )
    # -- the evolution ------------------------------------------------------------------------
    population_size: int = private_field(
        500, ge=1, description="members per class (the synthetic set's size per class)"
    )
    iterations: int = private_field(4, ge=1, description="T: votes, each one Gaussian release")
    threshold: float = private_field(
        2.0, ge=0, description="counts below this many noise stds are zeroed (private only)"
    )
    variation_strength: float = private_field(
        0.5, gt=0, le=1, description="SDEdit strength of VARIATION_API"
    )
    class_prompts: tuple[str, ...] | None = private_field(
        None, description="one prompt per class for class-conditional PE; None: unconditional"
    )
    max_noise_multiplier: float = private_field(
        500.0, gt=0, description="refuse an epsilon that needs more noise than this sigma"
    )
    # -- sampling ---------------------------------------------------------------------------
    sampler_steps: int = private_field(10, ge=1, description="DDIM steps of a full sample")


class PrivateEvolution(Method):
    """Private Evolution: DP nearest-neighbour votes steer a public generator's population."""

    name: ClassVar[str] = "private-evolution"
    description: ClassVar[str] = (
        "Private Evolution: a public diffusion model's samples, selected by noisy "
        "nearest-neighbour votes of the private images and varied by SDEdit (no DP training)"
    )
    Config: ClassVar[type[MethodConfig]] = PrivateEvolutionConfig

    config: PrivateEvolutionConfig

    def __init__(self, config: Any = None, *, ctx: Any) -> None:
        super().__init__(config, ctx=ctx)
        self.model: Any = None
        self.embedder: Any = None
        #: The synthetic set: uint8 ``(classes, population_size, 3, H, W)``.
        self.population: np.ndarray | None = None

    # -- public models ------------------------------------------------------------------------
    def pretrain_public(self, public: Any) -> None:
        from isoeps.models.embedders import PixelPCAEmbedder

        self.model = train_public_diffusion(
            self.config, public, ctx=self.ctx, progress=self._progress
        )
        rng = self.ctx.rng("init")
        count = min(len(public), self.config.embedder_images)
        chosen = np.sort(rng.choice(len(public), size=count, replace=False))
        self.embedder = PixelPCAEmbedder.fit(
            public.images[chosen],
            dim=self.config.embedding_dim,
            size=self.config.embedding_size,
            seed=self.ctx.seed_for("init"),
        )

    def save_public(self, directory: Path) -> None:
        if self.embedder is None:
            raise ConfigError(f"{self.name}: save_public before pretrain_public")
        save_public_diffusion(
            self.config, self.model, directory, marker=PUBLIC_FILE, method=self.name
        )
        self.embedder.save(Path(directory))

    def load_public(self, directory: Path) -> None:
        from isoeps.models.embedders import PixelPCAEmbedder

        self.model = load_public_diffusion(
            self.config, directory, marker=PUBLIC_FILE, method=self.name, device=self.ctx.device
        )
        self.embedder = PixelPCAEmbedder.load(Path(directory))

    # -- accounting ---------------------------------------------------------------------------
    def noise_multiplier_for(self, budget: PrivacyBudget) -> float:
        """sigma of each vote's Gaussian (sensitivity 1) so that T of them meet ``budget``.

        Raises:
            ConfigError: the target needs a sigma above ``max_noise_multiplier``.
        """
        try:
            return calibrate(
                budget.epsilon,
                budget.delta,
                1.0,
                self.config.iterations,
                primary_accountant("add_remove"),
                max_noise_multiplier=self.config.max_noise_multiplier,
            )
        except CalibrationError as error:
            raise ConfigError(
                f"{self.name}: epsilon={budget.epsilon:g} (delta={budget.delta:.3g}) over "
                f"{self.config.iterations} votes needs noise_multiplier > max_noise_multiplier="
                f"{self.config.max_noise_multiplier:g}; use fewer iterations or a larger epsilon"
            ) from error

    def plan(self, budget: PrivacyBudget, num_records: int) -> dict[str, Any] | None:
        """The T vote releases ``fit`` would make: q = 1, C = 1, sigma and the achieved epsilon.

        Args:
            budget: the cell's privacy budget.
            num_records: how many private records would vote.

        Returns:
            ``sample_rate``, ``steps``, ``clip_norm``, ``population_size`` and ``classes``,
            plus ``noise_multiplier`` and ``epsilon`` in a ``private`` cell; None in a
            ``public`` cell.
        """
        if budget.mode == "public":
            return None
        plan: dict[str, Any] = {
            "sample_rate": 1.0,
            "steps": self.config.iterations,
            "clip_norm": 1.0,
            "population_size": self.config.population_size,
            "classes": self.num_classes,
            "voters": num_records,
            "noise_multiplier": None,
        }
        if budget.mode == "private":
            sigma = self.noise_multiplier_for(budget)
            mechanism = SubsampledGaussian(sigma, 1.0, self.config.iterations)
            accountant = primary_accountant("add_remove")
            plan["noise_multiplier"] = sigma
            plan["epsilon"] = {accountant: epsilon(Ledger([mechanism]), budget.delta, accountant)}
        return plan

    @property
    def num_classes(self) -> int:
        return len(self.config.class_prompts) if self.config.class_prompts else 1

    # -- the evolution ------------------------------------------------------------------------
    def fit(self, private: PrivateData | None, budget: PrivacyBudget) -> FitReport:
        """Evolve the population with T noisy votes of the private images (none in ``public``).

        Args:
            private: the guard over the private records; unused in a ``public`` cell.
            budget: the cell's privacy budget; its mode picks what happens.

        Returns:
            Mode, T, sigma, q = 1 and C = 1, the rest in ``details``.

        Raises:
            ConfigError: no public models yet, a ``private``/``inf`` budget with ``private``
                None, or a target that needs more noise than ``max_noise_multiplier``.
        """
        started = time.perf_counter()
        self.check_budget(budget)
        if self.model is None or self.embedder is None:
            raise ConfigError(f"{self.name}: fit before pretrain_public/load_public")
        generator = self.ctx.torch_generator("sampling")
        rng = self.ctx.rng("sampling")
        population = self._random_population(generator)
        details: dict[str, Any] = {
            "population_size": self.config.population_size,
            "classes": self.num_classes,
            "embedder": f"pixel-pca (dim {self.embedder.dim}, {self.embedder.size}px, public)",
            "variation_strength": self.config.variation_strength,
        }
        if budget.mode == "public":
            self.population = population
            return FitReport(
                mode="public", wall_time_s=time.perf_counter() - started, details=details
            )
        if private is None:
            raise ConfigError(f"{self.name}: budget {budget.mode!r} needs private data")
        sigma = self.noise_multiplier_for(budget) if budget.is_private else None
        cutoff = self.config.threshold * sigma if sigma is not None else 0.0
        for iteration in range(self.config.iterations):
            counts = self._noisy_votes(private, population, sigma, iteration)
            counts[counts < cutoff] = 0.0
            population = self._vary(self._resample(population, counts, rng), generator)
            self.ctx.logger.info(
                "%s: vote %d/%d released and the population varied",
                self.name,
                iteration + 1,
                self.config.iterations,
            )
        self.population = population
        details["threshold_counts"] = cutoff
        return FitReport(
            mode=budget.mode,
            steps=self.config.iterations,
            noise_multiplier=sigma,
            sample_rate=1.0,
            clip_norm=1.0,
            wall_time_s=time.perf_counter() - started,
            details=details,
        )

    def _class_prompt(self, label: int) -> str:
        from isoeps.models.diffusion import UNCONDITIONAL

        return self.config.class_prompts[label] if self.config.class_prompts else UNCONDITIONAL

    def _population_prompts(self, size: int) -> list[str]:
        """The prompt of every member, class by class, ``size`` members each."""
        return [self._class_prompt(c) for c in range(self.num_classes) for _ in range(size)]

    def _random_population(self, generator: Any) -> np.ndarray:
        """RANDOM_API: ``population_size`` fresh samples per class."""
        size = self.config.population_size
        images = self.model.sample(
            self._population_prompts(size),
            generator=generator,
            steps=self.config.sampler_steps,
            guidance_scale=self.config.guidance_scale,
            batch_size=self.config.sample_batch_size,
        )
        return images.reshape(self.num_classes, size, *images.shape[1:])

    def _noisy_votes(
        self, private: PrivateData, population: np.ndarray, sigma: float | None, iteration: int
    ) -> np.ndarray:
        """One release: the noisy vote count of every member, ``(classes, population_size)``."""
        classes, size = population.shape[:2]
        members = self.embedder.embed(population.reshape(classes * size, *population.shape[2:]))
        members = members.reshape(classes, size, -1)
        release = private.aggregate(
            lambda records: self._votes(records, members),
            dim=classes * size,
            sample_rate=1.0,
            clip_norm=1.0,
            noise_multiplier=sigma,
            note=f"private-evolution vote {iteration + 1}",
        )
        # q = 1: the release is (votes + noise) / N, and N is public (len of the guard).
        return (release.value * len(private)).reshape(classes, size)

    def _votes(self, records: Any, members: np.ndarray) -> np.ndarray:
        """One-hot votes ``(n, classes * size)``: each record's nearest member of its class."""
        from isoeps.models.embedders import nearest

        classes, size = members.shape[:2]
        labels = self._labels(records.captions, private=True)
        # Embedded again inside every release (microseconds an image): nothing computed from
        # private records outlives the release that used it.
        embedded = self.embedder.embed(records.images)
        votes = np.zeros((len(labels), classes * size))
        for label in range(classes):
            rows = np.flatnonzero(labels == label)
            if len(rows):
                votes[rows, label * size + nearest(embedded[rows], members[label])] = 1.0
        return votes

    def _labels(self, captions: list[list[str]], *, private: bool) -> np.ndarray:
        """Each record's class: 0 without ``class_prompts``, else the index of the first of
        its captions that is a class prompt. The error for a private record does not quote
        its captions: an error message is not a DP release."""
        if not self.config.class_prompts:
            return np.zeros(len(captions), dtype=np.int64)
        index = {prompt: k for k, prompt in enumerate(self.config.class_prompts)}
        labels = []
        for record_captions in captions:
            found = [index[c] for c in record_captions if c in index]
            if not found:
                what = (
                    "a private record's captions (not shown: private data)"
                    if private
                    else f"the sample prompt {record_captions[0]!r}"
                )
                raise ConfigError(
                    f"{self.name}: {what} name none of class_prompts "
                    f"{list(self.config.class_prompts)} (class-conditional PE needs each "
                    "caption to be its class prompt)"
                )
            labels.append(found[0])
        return np.asarray(labels, dtype=np.int64)

    def _resample(
        self, population: np.ndarray, counts: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """Draw ``population_size`` members per class in proportion to ``counts``."""
        drawn = []
        for label in range(population.shape[0]):
            weights = np.clip(counts[label], 0.0, None)
            total = weights.sum()
            p = weights / total if total > 0 else None  # all zero: uniform
            chosen = rng.choice(population.shape[1], size=population.shape[1], p=p)
            drawn.append(population[label][chosen])
        return np.stack(drawn)

    def _vary(self, population: np.ndarray, generator: Any) -> np.ndarray:
        """VARIATION_API: SDEdit of every member with its class prompt."""
        classes, size = population.shape[:2]
        varied = self.model.vary(
            population.reshape(classes * size, *population.shape[2:]),
            self._population_prompts(size),
            strength=self.config.variation_strength,
            generator=generator,
            steps=self.config.sampler_steps,
            guidance_scale=self.config.guidance_scale,
            batch_size=self.config.sample_batch_size,
        )
        return varied.reshape(population.shape)

    # -- sampling -----------------------------------------------------------------------------
    def sample(self, prompts: list[str], n: int) -> Samples:
        """``n`` members of the synthetic set, cycling through ``prompts``; with classes, each
        prompt's member comes from its class.

        Args:
            prompts: the captions, used in turn; at least one. With ``class_prompts`` each
                must be one of them.
            n: how many images (members repeat when ``n`` exceeds a class's population).

        Returns:
            The images; ``prompts`` hold what the public model was given (the class prompt,
            or the unconditional prompt), ``eval_captions`` the captions asked for.

        Raises:
            ConfigError: ``fit`` has not run, ``prompts`` is empty, or a prompt is not a class
                prompt.
        """
        if self.population is None:
            raise ConfigError(f"{self.name}: sample before fit")
        if not prompts:
            raise ConfigError(f"{self.name}: sample needs at least one prompt")
        captions = [prompts[i % len(prompts)] for i in range(n)]
        labels = self._labels([[c] for c in captions], private=False)
        order = self.ctx.rng("sampling").permutation(self.population.shape[1])
        taken = np.zeros(self.population.shape[0], dtype=np.int64)
        images = []
        for label in labels:
            images.append(self.population[label, order[taken[label] % len(order)]])
            taken[label] += 1
        if taken.max(initial=0) > len(order):
            self.ctx.logger.warning(
                "%s: %d samples of one class from a population of %d: members repeat",
                self.name,
                int(taken.max()),
                len(order),
            )
        given = [self._class_prompt(int(label)) for label in labels]
        return Samples(images=np.stack(images), prompts=given, eval_captions=captions)

    def sample_unconditional(self, n: int) -> Samples:
        """``n`` members drawn across all classes (the synthetic set as a whole)."""
        if self.population is None:
            raise ConfigError(f"{self.name}: sample before fit")
        flat = self.population.reshape(-1, *self.population.shape[2:])
        order = self.ctx.rng("sampling").permutation(len(flat))
        images = flat[order[np.arange(n) % len(flat)]]
        return Samples(images=images, prompts=[OPEN_PROMPT] * n, eval_captions=[OPEN_PROMPT] * n)
