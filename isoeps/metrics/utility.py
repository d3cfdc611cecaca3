"""Downstream utility, the DPImageBench convention: train on samples, test on real images.

A fresh classifier (``classifier.py``) is trained on the samples, labelled by the attributes
their prompts asked for, then tested on the real reference images with their true attributes.
The value is the mean accuracy over attributes; per-attribute accuracies and the majority-class
baseline of the test set are in details. Its Wilson interval counts the test images
(:data:`TEST_SET_CI_NOTE`).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np
from pydantic import Field, field_validator

from isoeps.errors import ConfigError
from isoeps.metrics.base import Metric, MetricInputs, MetricOptions, MetricValue
from isoeps.metrics.bootstrap import wilson_interval
from isoeps.metrics.classifier import (
    ClassifierConfig,
    accuracies,
    check_labels,
    majority_rates,
    predict,
    train_classifier,
)
from isoeps.metrics.common import value
from isoeps.metrics.preprocess import check_images

#: ``details["ci_note"]`` of a test accuracy's Wilson interval.
TEST_SET_CI_NOTE = (
    "Wilson over the n_test test images (a mean over attributes or classifiers counts each "
    "image once: conservative); it covers the test set's sampling, not the classifier's "
    "training randomness, which the spread over seeds shows"
)


class UtilityMetric(Metric):
    name = "utility"

    class Options(MetricOptions):
        """``classifier``: the recipe of the classifier trained on the samples."""

        device: str | None = None
        classifier: ClassifierConfig = Field(default_factory=ClassifierConfig)

        @field_validator("classifier", mode="before")
        @classmethod
        def _none_is_default(cls, value: Any) -> Any:
            return {} if value is None else value

    options: Options

    def evaluate(self, inputs: MetricInputs) -> list[MetricValue]:
        fake = check_images(inputs.fake, what="samples")
        reference = inputs.reference
        if not inputs.fake_attributes:
            raise ConfigError(
                "utility needs the attributes the samples' prompts asked for (fake_attributes)"
            )
        if not reference.attributes or not reference.attribute_schema:
            raise ConfigError(
                f"utility needs attributes on the test split {reference.dataset}/{reference.split}"
            )
        labels = check_labels(inputs.fake_attributes, n=len(fake), what="fake_attributes")
        names = [name for name in labels if name in reference.attributes]
        if not names:
            raise ConfigError(
                f"fake_attributes {sorted(labels)} share no attribute with {reference.dataset}"
            )
        classes = {name: len(reference.attribute_schema[name]) for name in names}
        device = self.options.device or inputs.device
        model = train_classifier(
            fake,
            {n: labels[n] for n in names},
            classes=classes,
            config=self.options.classifier,
            device=device,
        )
        per = accuracies(
            predict(model, reference.images, config=self.options.classifier, device=device),
            reference.attributes,
        )
        majority = majority_rates({name: reference.attributes[name] for name in names})
        accuracy = float(np.mean(list(per.values())))
        return [
            value(
                "utility_accuracy",
                accuracy,
                higher_is_better=True,
                n=len(fake),
                details={
                    "per_attribute": per,
                    "majority_baseline": majority,
                    "n_test": len(reference),
                    "classifier_config": asdict(self.options.classifier),
                    "ci_note": TEST_SET_CI_NOTE,
                },
                ci=wilson_interval(proportion=accuracy, n=len(reference)),
            )
        ]
