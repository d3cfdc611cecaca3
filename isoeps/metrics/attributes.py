"""Attribute metrics: prompt consistency and style capture, via a classifier trained on EVAL.

- ``attr_consistency``: the classifier labels each sample; the value is the mean (over
  attributes) accuracy of those labels against the attributes the sample's prompt asked for
  (``MetricInputs.fake_attributes``).
- ``attr_tv``: per attribute, the total-variation distance between the samples' predicted
  value frequencies and the private split's true frequencies, averaged over attributes (the
  "style capture" claim). It reads the open-prompt samples when the cell drew them
  (``MetricInputs.open_prompt``): prompts that name every attribute would fix the frequencies
  and measure prompt following instead (that number stays in ``details["tv_prompted"]``).
  ``details["tv_vs_private_predicted"]`` repeats it against the classifier's labels of the
  private images, which cancels the classifier's own bias.

The classifier's held-out accuracy on the real reference images is in every value's details,
beside the majority-class rate of each attribute, so a reader knows how far to trust it; an
attribute it reads barely better than a constant guess is named in
``details["classifier_weak_attributes"]`` and logged as a warning. These numbers read the
private split after the release and are not differentially private.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np
from pydantic import Field, field_validator

from isoeps.datasets.base import ImageSplit
from isoeps.errors import ConfigError
from isoeps.log import get_logger
from isoeps.metrics.base import Metric, MetricInputs, MetricOptions, MetricValue
from isoeps.metrics.bootstrap import (
    Interval,
    ci_seed,
    optional_half_samples,
    resampled_interval,
    wilson_interval,
)
from isoeps.metrics.classifier import (
    ClassifierConfig,
    accuracies,
    check_labels,
    eval_classifier,
    majority_rates,
    predict,
)
from isoeps.metrics.common import CI_RESAMPLES, value
from isoeps.metrics.preprocess import check_images

log = get_logger(__name__)

#: Training steps of the eval classifier unless the metric's ``classifier`` options say
#: otherwise. Trained once per eval split (cached); at 300 steps on the 2,000 eval faces of the
#: quick suite it read smiling and gender no better than a constant guess (held-out 0.72 and
#: 0.74), at 1,500 every attribute reads >= 0.94 (benchmarks/RESULTS.md).
EVAL_CLASSIFIER_STEPS = 1500
#: An attribute whose held-out accuracy is within this of its majority-class rate is flagged.
WEAK_MARGIN = 0.05
#: ``details["ci_note"]`` of ``attr_consistency``'s Wilson interval.
CONSISTENCY_CI_NOTE = (
    "Wilson over the n samples (a mean over attributes counts each sample once: conservative); "
    "the eval classifier is fixed, so its own errors are not in the interval"
)


def frequencies(labels: np.ndarray, classes: int) -> np.ndarray:
    """The frequency of each class among ``labels`` (all zeros for no labels).

    Args:
        labels: class indices, ints in [0, classes).
        classes: the number of classes.

    Returns:
        float ``(classes,)``, summing to 1 unless ``labels`` is empty.
    """
    return np.bincount(labels, minlength=classes)[:classes] / max(len(labels), 1)


def total_variation(p: np.ndarray, q: np.ndarray) -> float:
    """Total-variation distance between two frequency vectors: half their L1 distance.

    Args:
        p: frequencies, as :func:`frequencies` returns.
        q: frequencies of the same classes.

    Returns:
        The distance, in [0, 1] for normalised vectors.
    """
    return float(0.5 * np.abs(p - q).sum())


class AttributeMetric(Metric):
    name = "attr"
    version = "2"  # 2: the eval classifier trains EVAL_CLASSIFIER_STEPS steps (was 300)
    needs = frozenset({"eval", "private", "open_prompt"})

    class Options(MetricOptions):
        """``classifier``: the eval classifier's recipe; steps default to
        ``EVAL_CLASSIFIER_STEPS`` (not the classifier's own default) unless given."""

        device: str | None = None
        ci_resamples: int = Field(
            default=CI_RESAMPLES, ge=0, description="half-samples behind attr_tv's interval"
        )
        classifier: ClassifierConfig = Field(
            default_factory=lambda: ClassifierConfig(steps=EVAL_CLASSIFIER_STEPS)
        )

        @field_validator("classifier", mode="before")
        @classmethod
        def _eval_steps(cls, value: Any) -> Any:
            if value is None:
                value = {}
            return {"steps": EVAL_CLASSIFIER_STEPS, **value} if isinstance(value, dict) else value

    options: Options

    def evaluate(self, inputs: MetricInputs) -> list[MetricValue]:
        """Prompt consistency (when the samples' asked attributes are known) and style capture.

        Args:
            inputs: the samples, the eval split (trains the classifier), the private split with
                attributes, and optionally ``fake_attributes`` and the open-prompt samples.

        Returns:
            ``attr_consistency`` (only with ``fake_attributes``), then ``attr_tv``.
        """
        fake = self._check_inputs(inputs)
        device = self.options.device or inputs.device
        model, key = eval_classifier(inputs.eval, config=self.options.classifier, device=device)
        predicted = self._predict(model, fake, device)
        common: dict[str, Any] = {
            "classifier": f"attribute-classifier@{key}",
            "classifier_config": asdict(self.options.classifier),
            **self._classifier_trust(model, inputs.reference, device),
        }
        values = []
        if inputs.fake_attributes:
            values.append(
                _consistency(inputs.fake_attributes, predicted, n=len(fake), common=common)
            )
        values.append(self._style_capture(inputs, model, fake, predicted, common, device))
        return values

    @staticmethod
    def _check_inputs(inputs: MetricInputs) -> np.ndarray:
        """The checked samples; raise when the eval or the attributed private split is missing."""
        fake = check_images(inputs.fake, what="samples")
        if inputs.eval is None:
            raise ConfigError("attribute metrics need the eval split to train their classifier")
        if inputs.private is None or not inputs.private.attributes:
            raise ConfigError(
                "attribute metrics need the private split with attributes (style capture)"
            )
        return fake

    def _predict(self, model: Any, images: np.ndarray, device: str) -> dict[str, np.ndarray]:
        """The eval classifier's labels of ``images``, per attribute."""
        return predict(model, images, config=self.options.classifier, device=device)

    def _classifier_trust(self, model: Any, reference: ImageSplit, device: str) -> dict[str, Any]:
        """Held-out accuracy, majority rates and weak attributes on the reference images
        (nothing when they carry no attributes); warns about the weak ones."""
        if not reference.attributes:
            return {}
        held_out = accuracies(self._predict(model, reference.images, device), reference.attributes)
        majority = majority_rates(reference.attributes)
        weak = sorted(name for name, acc in held_out.items() if acc < majority[name] + WEAK_MARGIN)
        if weak:
            log.warning(
                "attribute classifier reads %s barely better than a constant guess "
                "(held-out accuracy vs majority rate: %s); their attribute numbers are noise",
                ", ".join(weak),
                ", ".join(f"{n} {held_out[n]:.2f}/{majority[n]:.2f}" for n in weak),
            )
        return {
            "classifier_heldout_accuracy": held_out,
            "classifier_heldout_majority": {n: majority[n] for n in held_out},
            "classifier_weak_attributes": weak,
            "classifier_heldout_n": len(reference),
        }

    def _style_capture(
        self,
        inputs: MetricInputs,
        model: Any,
        fake: np.ndarray,
        predicted: dict[str, np.ndarray],
        common: dict[str, Any],
        device: str,
    ) -> MetricValue:
        """``attr_tv``: the open-prompt samples' distance from the private frequencies (the
        prompted samples' when the cell drew no open-prompt ones)."""
        schema = inputs.eval.attribute_schema or {}
        private_predicted = self._predict(model, inputs.private.images, device)
        private_labels = {k: np.asarray(v) for k, v in inputs.private.attributes.items()}
        prompted = _style_distances(predicted, private_labels, private_predicted, schema)
        if inputs.open_prompt is not None:
            open_images = check_images(inputs.open_prompt, what="open-prompt samples")
            open_predicted = self._predict(model, open_images, device)
            tv, tv_predicted = _style_distances(
                open_predicted, private_labels, private_predicted, schema
            )
            sampled = open_predicted
            count = len(open_images)
            source = {
                "samples": "open prompt (no attribute named)",
                "tv_prompted": float(np.mean(list(prompted[0].values()))),
            }
        else:
            tv, tv_predicted = prompted
            sampled = predicted
            count = len(fake)
            source = {"samples": "prompted with reference captions (mostly prompt following)"}
        mean_tv = float(np.mean(list(tv.values())))
        return value(
            "attr_tv",
            mean_tv,
            higher_is_better=False,
            n=count,
            details={
                **common,
                **source,
                "per_attribute": tv,
                "tv_vs_private_predicted": tv_predicted,
                "n_private": len(inputs.private),
            },
            reads_private=True,
            ci=self._tv_interval(sampled, private_labels, schema, tv=mean_tv, seed=inputs.seed),
        )

    def _tv_interval(
        self,
        predicted: dict[str, np.ndarray],
        private_labels: dict[str, np.ndarray],
        schema: dict[str, list[str]],
        *,
        tv: float,
        seed: int,
    ) -> Interval | None:
        """Half-sampling over the samples; the private frequencies are a fixed target."""
        n = len(next(iter(predicted.values())))
        seed = ci_seed(seed=seed, purpose="attr_tv")
        counts = optional_half_samples(n=n, resamples=self.options.ci_resamples, seed=seed)
        if counts is None:
            return None
        replicates = tv_replicates(predicted, private_labels, schema, counts=counts)
        return resampled_interval(replicates=replicates, value=tv, seed=seed, bounds=(0, 1))


def _consistency(
    fake_attributes: dict[str, Any],
    predicted: dict[str, np.ndarray],
    *,
    n: int,
    common: dict[str, Any],
) -> MetricValue:
    """``attr_consistency``: the mean accuracy of the predicted labels against the asked ones."""
    asked = check_labels(fake_attributes, n=n, what="fake_attributes")
    per = {
        name: float((predicted[name] == asked[name]).mean()) for name in asked if name in predicted
    }
    if not per:
        raise ConfigError(
            f"fake_attributes {sorted(asked)} share no attribute with the classifier's {sorted(predicted)}"
        )
    accuracy = float(np.mean(list(per.values())))
    return value(
        "attr_consistency",
        accuracy,
        higher_is_better=True,
        n=n,
        details={**common, "per_attribute": per, "ci_note": CONSISTENCY_CI_NOTE},
        reads_private=False,
        ci=wilson_interval(proportion=accuracy, n=n),
    )


def tv_replicates(
    predicted: dict[str, np.ndarray],
    private_labels: dict[str, np.ndarray],
    schema: dict[str, list[str]],
    *,
    counts: np.ndarray,
) -> np.ndarray:
    """The mean TV distance (as ``attr_tv``) of each reweighted sample set.

    Args:
        predicted: the samples' predicted value index per attribute, ``(N,)`` each.
        private_labels: the private split's true value index per attribute.
        schema: each attribute's value names.
        counts: ``(R, N)`` sample weights, one resample per row (:func:`half_samples`).

    Returns:
        ``(R,)``: per resample, the TV distance from the private frequencies averaged over the
        attributes both sides have.
    """
    weights = counts / counts.sum(axis=1, keepdims=True)
    per_attribute = []
    for name, labels in private_labels.items():
        if name not in predicted:
            continue
        classes = len(schema[name])
        onehot = np.eye(classes)[np.asarray(predicted[name])]
        target = frequencies(labels, classes)
        per_attribute.append(0.5 * np.abs(weights @ onehot - target).sum(axis=1))
    return np.mean(per_attribute, axis=0)


def _style_distances(
    predicted: dict[str, np.ndarray],
    private_labels: dict[str, np.ndarray],
    private_predicted: dict[str, np.ndarray],
    schema: dict[str, list[str]],
) -> tuple[dict[str, float], dict[str, float]]:
    """Per attribute, the TV distance of the samples' predicted frequencies from the private
    split's true frequencies, and from the classifier's labels of the private split."""
    tv, tv_predicted = {}, {}
    for name, labels in private_labels.items():
        if name not in predicted:
            continue
        classes = len(schema[name])
        sample_freq = frequencies(predicted[name], classes)
        tv[name] = total_variation(sample_freq, frequencies(labels, classes))
        tv_predicted[name] = total_variation(
            sample_freq, frequencies(private_predicted[name], classes)
        )
    if not tv:
        raise ConfigError("the private split shares no attribute with the eval classifier")
    return tv, tv_predicted
