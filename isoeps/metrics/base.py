"""The metric contract the harness calls.

A metric is constructed with keyword options, validated by its pydantic ``Options`` model
(strict: an unknown or malformed option is a :class:`~isoeps.errors.ConfigError` naming
``metrics.<name>.<field>``, as method and dataset configs name theirs), then
:meth:`Metric.evaluate` takes a :class:`MetricInputs` and returns :class:`MetricValue` rows. Feature-level math lives in pure
functions (``frechet_distance``, ``kernel_distance``, ``prdc``...), each tested against its
reference library; the objects only wire backbones, caches and provenance.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from isoeps.datasets.base import ImageSplit
from isoeps.errors import ConfigError


@dataclass
class MetricInputs:
    """Everything a metric may need for one cell.

    ``fake`` are the generated uint8 ``(n, 3, H, W)`` images; ``fake_captions`` their plain
    eval captions; ``fake_attributes`` the attributes their prompts asked for (name -> int
    array, when the dataset has attributes). ``reference`` is the held-out real split the
    prompts came from; ``eval`` the evaluator-training split; ``private`` the training split
    (read for memorisation and style capture only, after the release; these numbers are not
    DP). ``extraction`` holds samples generated from training captions, when asked for;
    ``open_prompt`` samples generated from the open prompt (no attribute named), when asked
    for: style capture reads them. ``validation`` is the source's sensitive validation split
    (DPImageBench's 5,000 held-back training records), given only to metrics that need it;
    ``epsilon`` is the cell's target ε (``inf`` for a non-private row, None for a public row),
    for protocols whose evaluation spends a budget of its own (DPImageBench's noisy epoch
    selection).
    """

    fake: np.ndarray
    fake_captions: list[str]
    reference: ImageSplit
    fake_attributes: dict[str, np.ndarray] | None = None
    fake_prompt_source_ids: list[str] | None = None
    eval: ImageSplit | None = None
    private: ImageSplit | None = None
    extraction: np.ndarray | None = None
    extraction_source_ids: list[str] | None = None
    open_prompt: np.ndarray | None = None
    validation: ImageSplit | None = None
    epsilon: float | None = None
    seed: int = 0
    device: str = "cpu"


@dataclass
class MetricValue:
    """One number with its provenance. ``name`` is e.g. ``"fid"``, ``"precision"``.

    The harness reads three fields besides the number: ``reads_private`` says whether this
    value read the private (or sensitive validation) split, so it is not DP (None: as the
    metric's ``needs`` say); ``resize_mode`` names the resize its images went through;
    ``artifacts`` holds what the run folder keeps beside the value (``closest_pairs``:
    ``[{"sample": j, "private_id": id, "d_train": d}, ...]`` becomes ``mem_pairs.npz``).
    ``details`` is free-form provenance for readers.

    ``ci_low``/``ci_high`` bound the value's own confidence interval, computed on the features
    already computed (no new network pass); ``details["ci"]`` then says how:
    ``{"level": 0.95, "method": ..., "resampled": "fake" | None, "resamples": int | None,
    "seed": int | None}`` (:mod:`isoeps.metrics.bootstrap`). None where the statistic has none.
    """

    name: str
    value: float
    higher_is_better: bool
    n: int
    backbone: str | None = None
    backbone_sha256: str | None = None
    std: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    reads_private: bool | None = None
    resize_mode: str | None = None
    artifacts: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class MetricOptions(BaseModel):
    """Base of every metric's options (the suite's ``metrics.<name>`` mapping): unknown fields
    are an error naming the field, and options never change once a metric is built."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Metric(ABC):
    """Subclasses declare ``Options`` (a :class:`MetricOptions`) and read ``self.options``.

    Only the options as the suite gives them enter the cell id (defaults are not filled in),
    so a metric may add an option with a default without changing any id; a default that
    changes the numbers needs a ``version`` bump.
    """

    #: The registry name (``isoeps.metrics`` entry point), e.g. ``"fid"``.
    name: ClassVar[str]
    #: The options model; its defaults are the metric's defaults.
    Options: ClassVar[type[MetricOptions]] = MetricOptions
    #: Inputs this metric needs beyond ``fake`` and ``reference``: e.g. {"eval", "private"}.
    #: "extraction" and "open_prompt" ask the harness to draw the suite's
    #: ``extraction_samples`` and ``open_prompt_samples``.
    needs: ClassVar[frozenset[str]] = frozenset()
    #: Bumped when the metric's numbers change at the same options (e.g. a stronger default
    #: classifier), so that cells computed before are not reused as if they were comparable.
    version: ClassVar[str] = "1"

    def __init__(self, **options: Any) -> None:
        self.options = self.parse_options(options)

    @classmethod
    def parse_options(cls, options: dict[str, Any], *, field: str | None = None) -> Any:
        """``options`` validated by ``cls.Options``; a ConfigError naming ``<field>.<option>``
        (``field`` defaults to ``metrics.<name>``) otherwise.

        Args:
            options: the metric's options, as given in the suite.
            field: the config path that errors name; None for ``metrics.<name>``.

        Returns:
            The validated ``cls.Options`` instance.

        Raises:
            ConfigError: an option does not validate.
        """
        try:
            return cls.Options.model_validate(dict(options))
        except ValidationError as exc:
            raise ConfigError.from_validation(
                exc, cls.Options, field=field or f"metrics.{cls.name}"
            ) from None

    @classmethod
    def from_options(cls, options: dict[str, Any], *, field: str | None = None) -> Metric:
        """The metric built from a suite's ``metrics.<name>`` options, every error naming
        ``field`` (the suite's ``metrics.<name>``: the registry name, which may differ from
        ``cls.name``). A plugin metric with an ``__init__`` of its own and no ``Options``
        model keeps its keyword arguments; their errors name ``field`` as well.

        Args:
            options: the metric's options, as given in the suite.
            field: the config path that errors name; None for ``metrics.<cls.name>``.

        Returns:
            The metric.

        Raises:
            ConfigError: an option does not validate, or the constructor raises ``TypeError``
                or ``ValueError``.
        """
        field = field or f"metrics.{cls.name}"
        if cls.Options is not MetricOptions or cls.__init__ is Metric.__init__:
            cls.parse_options(options, field=field)
        try:
            return cls(**options)
        except ConfigError:
            raise
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{field}: {exc}") from None

    @abstractmethod
    def evaluate(self, inputs: MetricInputs) -> list[MetricValue]:
        """Compute this metric's values for one cell."""
