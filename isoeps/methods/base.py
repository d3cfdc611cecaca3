"""The method contract: one constructor signature, a typed config, three budget modes.

Every method is ``Method(config, *, ctx)`` and implements :meth:`Method.pretrain_public`,
:meth:`Method.fit` and :meth:`Method.sample`. The harness hands ``fit`` a ``PrivateData``
guard (never the raw dataset) and re-accounts the guard's ledger itself; a method never adds
DP noise itself but calls the shared engine in :mod:`isoeps.privacy`.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import InitVar, asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import PydanticUndefined

from isoeps.accountants import PrivacyBudget
from isoeps.datasets.base import ImageSplit
from isoeps.privacy.guard import PrivateData

#: Purposes for which :class:`MethodContext` derives independent random streams, and the
#: spawn key of each. Key 3 was the retired "noise" purpose: the mechanism's randomness is the
#: guard's, derived by the harness through a path no method is given
#: (:func:`isoeps.privacy.rng.mechanism_seed`).
_SPAWN_KEYS: dict[str, int] = {"data": 0, "init": 1, "sampling": 2, "evaluation": 4}
RNG_PURPOSES: tuple[str, ...] = tuple(_SPAWN_KEYS)


#: The two parts of a method config: ``public`` fields determine the public model(s) and form
#: the public cache key; ``private`` fields act only on the private fit or on sampling, so
#: every epsilon and DP setting shares one cached public model.
CONFIG_PARTS: tuple[str, ...] = ("public", "private")


def public_field(default: Any = PydanticUndefined, **kwargs: Any) -> Any:
    """A config field of the public part (a ``pydantic.Field`` that says so)."""
    return Field(default, json_schema_extra={"part": "public"}, **kwargs)


def private_field(default: Any = PydanticUndefined, **kwargs: Any) -> Any:
    """A config field of the private part: the private fit or sampling only."""
    return Field(default, json_schema_extra={"part": "private"}, **kwargs)


class MethodConfig(BaseModel):
    """Base of every method's ``Config``: unknown fields are errors that name the field.

    Declare each field with :func:`public_field` or :func:`private_field`; the public cache
    key is :meth:`public_part`. A field declared with plain ``Field`` counts as public: a
    key with one field too many only retrains a public model, one too few would share a
    model between configs that differ.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    pretrain_seed: int = public_field(
        0,
        ge=0,
        description="seed of all public training: part of the public cache key, so "
        "every cell (any budget, any cell seed) shares the public model it names",
    )

    @classmethod
    def part_of(cls, name: str) -> str | None:
        """``"public"`` or ``"private"`` as field ``name`` declares it; None if undeclared."""
        extra = cls.model_fields[name].json_schema_extra
        return extra.get("part") if isinstance(extra, dict) else None

    def public_part(self) -> dict[str, Any]:
        """The values of every field not declared private: what the public models depend on."""
        dumped = self.model_dump()
        return {
            name: dumped[name]
            for name in type(self).model_fields
            if self.part_of(name) != "private"
        }


#: The prompt and eval caption recorded with unconditional samples (:meth:`Method.
#: sample_unconditional`): they name no attribute, so they show the distribution a model has
#: learned (style capture), not how well it follows prompts.
OPEN_PROMPT = ""


@dataclass
class Samples:
    """What ``sample`` returns: uint8 ``(n, 3, H, W)`` images and, per image, the prompt it
    was generated from and the plain caption it is scored against (no private tokens)."""

    images: np.ndarray
    prompts: list[str]
    eval_captions: list[str]

    def __post_init__(self) -> None:
        if self.images.dtype != np.uint8 or self.images.ndim != 4 or self.images.shape[1] != 3:
            raise ValueError(
                f"Samples.images must be uint8 (n, 3, H, W), got "
                f"{self.images.dtype} {self.images.shape}"
            )
        n = self.images.shape[0]
        if len(self.prompts) != n or len(self.eval_captions) != n:
            raise ValueError(
                f"Samples: {n} images but {len(self.prompts)} prompts and "
                f"{len(self.eval_captions)} eval_captions"
            )


@dataclass(frozen=True, kw_only=True)
class FitReport:
    """What ``fit`` did, stored in the run folder (``fit.json``) and the index.

    Only what the config and the mechanism determine (steps, sigma, q, C, time) and DP
    outputs: never a statistic of the private data (a loss, a clipped fraction), which would
    be released without noise.

    Args:
        mode: the budget mode, ``"private"``, ``"inf"`` or ``"public"``.
        steps: releases made through the guard (DP-SGD steps, or 1 for one aggregation).
        noise_multiplier: sigma (None for ``inf``/``public``).
        sample_rate: the Poisson rate q.
        clip_norm: C.
        wall_time_s: time spent in ``fit``.
        details: other JSON-able facts of the same kind (the backend, the adjacency, ...).
    """

    mode: str
    steps: int = 0
    noise_multiplier: float | None = None
    sample_rate: float | None = None
    clip_norm: float | None = None
    wall_time_s: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class MethodContext:
    """Everything a method gets from the harness besides its config.

    ``seed`` is the cell's root seed; it is not kept: :meth:`rng`/:meth:`seed_for` derive an
    independent stream per purpose with ``numpy.random.SeedSequence`` from the seeds computed
    at construction. (Secure mode is the guard's: the harness builds it, and a method's own
    streams never touch private records' randomness.)
    """

    device: str = "cpu"
    seed: InitVar[int] = 0
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("isoeps.method"))
    show_progress: bool = True
    _purpose_seeds: dict[str, int] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self, seed: int) -> None:
        for purpose, key in _SPAWN_KEYS.items():
            sequence = np.random.SeedSequence(seed, spawn_key=(key,))
            self._purpose_seeds[purpose] = int(sequence.generate_state(1, dtype=np.uint32)[0])

    def seed_for(self, purpose: str) -> int:
        if purpose not in self._purpose_seeds:
            raise ValueError(f"unknown RNG purpose {purpose!r}; known: {RNG_PURPOSES}")
        return self._purpose_seeds[purpose]

    def rng(self, purpose: str) -> np.random.Generator:
        return np.random.default_rng(self.seed_for(purpose))

    def for_public(self, pretrain_seed: int) -> MethodContext:
        """The context public pretraining runs in: this one's device and logging, with every
        stream derived from ``pretrain_seed`` instead of the cell's seed. A cached public
        model is shared by every cell, so no cell's seed may reach it."""
        return MethodContext(
            device=self.device,
            seed=pretrain_seed,
            logger=self.logger,
            show_progress=self.show_progress,
        )

    def torch_generator(self, purpose: str, device: str | None = None) -> Any:
        """A ``torch.Generator`` seeded with this context's stream for ``purpose``.

        Args:
            purpose: one of :data:`RNG_PURPOSES`.
            device: the generator's device; None for ``"cpu"``.

        Returns:
            A fresh generator; each call restarts the stream.

        Raises:
            ValueError: ``purpose`` is not a known RNG purpose.
        """
        import torch

        generator = torch.Generator(device=device or "cpu")
        generator.manual_seed(self.seed_for(purpose))
        return generator


# The dataclass leaves the InitVar's default behind as a class attribute, so ``ctx.seed`` would
# read 0 whatever the cell seed was; drop it, so that reading it fails instead of misleading.
del MethodContext.seed


class Method(ABC):
    """Base class of every generator under test."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    Config: ClassVar[type[MethodConfig]] = MethodConfig
    version: ClassVar[str] = "1"
    #: Budget modes this method can run: any of "private", "inf", "public".
    supported_budgets: ClassVar[tuple[str, ...]] = ("private", "inf", "public")

    def __init__(self, config: MethodConfig | dict[str, Any] | None = None, *, ctx: MethodContext):
        self.config = config if isinstance(config, self.Config) else self.Config(**(config or {}))
        self.ctx = ctx

    # -- public pretraining (cached by the harness) -------------------------------------------
    def public_cache_key(self) -> dict[str, Any]:
        """What determines the public model besides the public data: the config's public
        part, so that every epsilon and DP setting shares one cached public model."""
        return {"method": self.name, "version": self.version, "config": self.config.public_part()}

    @abstractmethod
    def pretrain_public(self, public: ImageSplit) -> None:
        """Train the public model(s) on public data only."""

    @abstractmethod
    def save_public(self, directory: Path) -> None:
        """Write the public model(s) to ``directory`` (for the harness's cache)."""

    @abstractmethod
    def load_public(self, directory: Path) -> None:
        """Load what :meth:`save_public` wrote."""

    # -- private fit and sampling -------------------------------------------------------------
    @abstractmethod
    def fit(self, private: PrivateData | None, budget: PrivacyBudget) -> FitReport | None:
        """Adapt to private data through the guard. In a ``public`` cell ``private`` is a
        :class:`~isoeps.privacy.public_only.NoPrivateData`, whose every use raises.

        Args:
            private: the guard over the private records (or ``NoPrivateData``).
            budget: the cell's privacy budget.

        Returns:
            What was done (:class:`FitReport`); None if the method does not say.
        """

    @abstractmethod
    def sample(self, prompts: list[str], n: int) -> Samples:
        """Generate ``n`` images, cycling through ``prompts``.

        Args:
            prompts: the captions, used in turn.
            n: how many images.

        Returns:
            The images with the prompt and eval caption of each.
        """

    def sample_unconditional(self, n: int) -> Samples:
        """``n`` images from the model's own distribution, no caption named (style capture).

        Each method says what that means for it: a text-conditional model samples its null
        condition (what caption dropout trains), a method with a learned private token keeps
        the token and drops only the caption. Record :data:`OPEN_PROMPT` as the prompts and
        eval captions. Suites whose metrics need ``open_prompt`` samples call it; the default
        says the method cannot.
        """
        raise NotImplementedError(
            f"method {self.name!r} does not implement sample_unconditional(n), which the "
            "suite's open-prompt samples (open_prompt_samples, read by attr_tv) need"
        )

    def plan(self, budget: PrivacyBudget, num_records: int) -> dict[str, Any] | None:
        """What ``fit`` would spend on ``num_records`` private records at ``budget``, without
        touching data: sample rate, steps, calibrated sigma, achieved epsilon. ``--dry-run``
        prints it. None when the method spends nothing (``public``) or cannot say.

        Args:
            budget: the cell's privacy budget.
            num_records: how many private records ``fit`` would see.

        Returns:
            The plan as a JSON-friendly dict, or None (this default always returns None).
        """
        return None

    def check_budget(self, budget: PrivacyBudget) -> None:
        if budget.mode not in self.supported_budgets:
            raise ValueError(
                f"method {self.name!r} does not support budget {budget.mode!r}; "
                f"supported: {self.supported_budgets}"
            )

    def _progress(self, iterable: Any) -> Any:
        """``iterable`` under a progress bar named after the method, unless the context turns
        progress off (the callable that public training loops take)."""
        from isoeps.log import progress

        return progress(iterable, desc=self.name) if self.ctx.show_progress else iterable
