"""Shared wiring for metrics over backbone features (FID, KID, PRDC)."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from isoeps.metrics.backbones import Backbone, load_backbone
from isoeps.metrics.base import Metric, MetricInputs, MetricOptions, MetricValue
from isoeps.metrics.bootstrap import Interval
from isoeps.metrics.features import image_features, split_features
from isoeps.metrics.preprocess import check_images

#: Half-samples behind a value's confidence interval unless ``ci_resamples`` says otherwise
#: (0: no interval); their cost at n = 500 and 2,000 is in docs/metrics.md.
CI_RESAMPLES = 200


class FeatureOptions(MetricOptions):
    """Options of every metric over backbone features.

    ``device=None`` uses the device in :class:`MetricInputs`; ``weights`` overrides the
    backbone's weight path (Inception only); ``ci_resamples`` is the number of half-samples
    behind each value's confidence interval (0: none). It does not change the values.
    """

    backbone: str = "inception"
    device: str | None = None
    batch_size: int = Field(default=64, ge=1)
    weights: str | None = None
    ci_resamples: int = Field(default=CI_RESAMPLES, ge=0)


class FeatureMetric(Metric):
    """A metric over (sample, reference) features of one backbone."""

    Options = FeatureOptions
    options: FeatureOptions

    def backbone(self, inputs: MetricInputs) -> Backbone:
        options: dict[str, Any] = {}
        if self.options.weights:
            options["weights"] = self.options.weights
        if self.options.backbone == "tiny-clip-eval":
            options["eval_split"] = inputs.eval
        device = self.options.device or inputs.device
        return load_backbone(self.options.backbone, device=device, **options)

    def features(self, inputs: MetricInputs) -> tuple[Backbone, np.ndarray, np.ndarray]:
        """(backbone, sample features, reference features)."""
        check_images(inputs.fake, what="samples")
        backbone = self.backbone(inputs)
        batch_size = self.options.batch_size
        fake = image_features(backbone, inputs.fake, batch_size=batch_size)
        real = split_features(backbone, inputs.reference, batch_size=batch_size)
        return backbone, fake, real


def value(
    name: str,
    number: float,
    *,
    higher_is_better: bool,
    n: int,
    backbone: Backbone | None = None,
    std: float | None = None,
    details: dict[str, Any] | None = None,
    reads_private: bool | None = None,
    artifacts: dict[str, Any] | None = None,
    ci: Interval | None = None,
) -> MetricValue:
    """A :class:`MetricValue` stamped with the backbone's name, sha256 and resize mode.

    Args:
        name: the value's name (e.g. ``fid``).
        number: the value.
        higher_is_better: the direction of the metric.
        n: how many samples it was computed on.
        backbone: the feature backbone, if any; its labels are merged into ``details``.
        std: a standard deviation of the value, if the metric has one.
        details: extra information kept with the value.
        reads_private: whether the metric reads the private split; None if not stated.
        artifacts: files or data written beside the value.
        ci: the value's confidence interval: ``ci_low``, ``ci_high`` and ``details["ci"]``.

    Returns:
        The value.
    """
    details = dict(details or {})
    if backbone is not None:
        details.update(getattr(backbone, "labels", {}))
    if ci is not None:
        details["ci"] = ci.provenance()
    return MetricValue(
        name=name,
        value=float(number),
        higher_is_better=higher_is_better,
        n=int(n),
        backbone=backbone.name if backbone is not None else None,
        backbone_sha256=backbone.weights_sha256 if backbone is not None else None,
        std=None if std is None else float(std),
        ci_low=None if ci is None else ci.low,
        ci_high=None if ci is None else ci.high,
        details=details,
        reads_private=reads_private,
        resize_mode=backbone.resize_mode if backbone is not None else None,
        artifacts=dict(artifacts or {}),
    )
