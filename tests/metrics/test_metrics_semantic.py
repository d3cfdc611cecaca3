"""Memorisation, attributes and utility on tiny synthetic shapes."""

from __future__ import annotations

import numpy as np
import pytest
from metrics_fixtures import shape_split

from isoeps.errors import ConfigError
from isoeps.metrics.attributes import EVAL_CLASSIFIER_STEPS, AttributeMetric, total_variation
from isoeps.metrics.base import MetricInputs
from isoeps.metrics.bootstrap import wilson_interval
from isoeps.metrics.memorisation import MemorisationMetric
from isoeps.metrics.utility import UtilityMetric

CLF = {"steps": 60, "batch_size": 64, "width": 16, "lr": 5e-3}


def _noisy(images: np.ndarray, scale: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(images + rng.normal(0, scale, images.shape), 0, 255).astype(np.uint8)


def test_memorisation_flags_copies_and_not_fresh_samples() -> None:
    private = shape_split(60, seed=0, split="private")
    reference = shape_split(60, seed=1, split="reference")
    copies = _noisy(private.images[:20], 2)
    fresh = shape_split(20, seed=2).images
    source_ids = reference.ids[:20]
    metric = MemorisationMetric()
    copied = {
        v.name: v
        for v in metric.evaluate(
            MetricInputs(
                fake=copies,
                fake_captions=[],
                reference=reference,
                private=private,
                fake_prompt_source_ids=source_ids,
                extraction=copies,
                extraction_source_ids=private.ids[:20],
            )
        )
    }
    assert copied["mem_closer_to_train"].value == 1.0
    assert copied["mem_near_copy_rate"].value > 0.9
    assert copied["mem_extraction_near_copy_rate"].details["nearest_is_source_rate"] == 1.0
    pairs = copied["mem_closer_to_train"].artifacts["closest_pairs"]
    assert set(pairs[0]) == {"sample", "private_id", "d_train", "d_heldout"}
    novel = {
        v.name: v
        for v in metric.evaluate(
            MetricInputs(
                fake=fresh,
                fake_captions=[],
                reference=reference,
                private=private,
                fake_prompt_source_ids=source_ids,
            )
        )
    }
    assert novel["mem_closer_to_train"].value < 0.8
    assert novel["mem_near_copy_rate"].value == 0.0


def test_memorisation_excludes_the_prompt_source() -> None:
    private = shape_split(30, seed=0, split="private")
    reference = shape_split(31, seed=1, split="reference")
    # Samples that copy their own prompt's reference image: only the exclusion keeps them honest.
    fake = reference.images[:10]
    (closer, _) = MemorisationMetric().evaluate(
        MetricInputs(
            fake=fake,
            fake_captions=[],
            reference=reference,
            private=private,
            fake_prompt_source_ids=reference.ids[:10],
        )
    )
    assert closer.details["mean_d_heldout"] > 0.5
    assert closer.details["prompt_source_excluded"] is True
    (unexcluded, _) = MemorisationMetric().evaluate(
        MetricInputs(fake=fake, fake_captions=[], reference=reference, private=private)
    )
    assert unexcluded.details["prompt_source_excluded"] is False
    assert unexcluded.details["mean_d_heldout"] < closer.details["mean_d_heldout"]
    with pytest.raises(ConfigError, match="prompt source id"):
        MemorisationMetric().evaluate(
            MetricInputs(
                fake=fake,
                fake_captions=[],
                reference=reference,
                private=private,
                fake_prompt_source_ids=["x"],
            )
        )


def test_total_variation() -> None:
    assert total_variation(np.array([0.5, 0.5]), np.array([1.0, 0.0])) == 0.5


def test_attribute_metric_flags_attributes_its_classifier_cannot_read(caplog) -> None:
    """One training step leaves a constant guess: the metric must say so, not hide it."""
    split = shape_split(60, seed=0)
    inputs = MetricInputs(
        fake=split.images,
        fake_captions=[],
        reference=shape_split(60, seed=1, split="reference"),
        fake_attributes=split.attributes,
        eval=split,
        private=shape_split(60, seed=2, split="private"),
    )
    metric = AttributeMetric(classifier={"steps": 1, "width": 8, "batch_size": 8})
    with caplog.at_level("WARNING"):
        values = {v.name: v for v in metric.evaluate(inputs)}
    details = values["attr_tv"].details
    assert details["classifier_weak_attributes"], details["classifier_heldout_accuracy"]
    for name in details["classifier_weak_attributes"]:
        assert (
            details["classifier_heldout_accuracy"][name]
            < details["classifier_heldout_majority"][name] + 0.05
        )
    assert "barely better than a constant guess" in caplog.text


def test_the_eval_classifier_trains_long_enough_by_default() -> None:
    assert AttributeMetric().options.classifier.steps == EVAL_CLASSIFIER_STEPS >= 1000
    assert AttributeMetric(classifier={"steps": 7}).options.classifier.steps == 7
    # other classifier fields keep the eval default of steps; None is the default recipe
    assert (
        AttributeMetric(classifier={"width": 16}).options.classifier.steps == EVAL_CLASSIFIER_STEPS
    )
    assert AttributeMetric(classifier=None).options.classifier.steps == EVAL_CLASSIFIER_STEPS
    assert UtilityMetric().options.classifier.steps == 300


@pytest.mark.slow
def test_attribute_and_utility_metrics() -> None:
    eval_split = shape_split(400, seed=0)
    reference = shape_split(80, seed=1, split="reference")
    private = shape_split(200, seed=2, split="private")
    good = shape_split(80, seed=3)
    common = {
        "fake_captions": [],
        "reference": reference,
        "fake_attributes": good.attributes,
        "eval": eval_split,
        "private": private,
    }

    def evaluate(fake: np.ndarray, **extra) -> dict:
        inputs = MetricInputs(fake=fake, **common, **extra)
        return {v.name: v for v in AttributeMetric(classifier=CLF).evaluate(inputs)}

    values = evaluate(good.images)
    held_out = values["attr_consistency"].details["classifier_heldout_accuracy"]
    assert min(held_out.values()) > 0.8, held_out
    assert values["attr_consistency"].details["classifier_weak_attributes"] == []
    assert values["attr_consistency"].value > 0.8
    consistency = values["attr_consistency"]
    wilson = wilson_interval(proportion=consistency.value, n=80)
    assert (consistency.ci_low, consistency.ci_high) == (wilson.low, wilson.high)
    tv = values["attr_tv"]  # a distance: a half-sampling interval over the samples
    assert tv.ci_low <= tv.value <= tv.ci_high and tv.ci_high > tv.ci_low
    assert tv.details["ci"]["method"] == "half-sampling-centred-percentile"
    assert values["attr_tv"].value < 0.15
    # Only the style-capture value reads the private split (so only it is marked not DP).
    assert values["attr_tv"].reads_private is True
    assert values["attr_consistency"].reads_private is False
    # Samples that ignore their prompts: all green squares.
    wrong = good.images.copy()
    wrong[:] = shape_split(1, seed=9).images[0]
    bad = evaluate(wrong)
    assert bad["attr_consistency"].value < values["attr_consistency"].value - 0.2
    assert bad["attr_tv"].value > 0.3
    # Style capture reads the open-prompt samples when given; prompted ones stay in details.
    styled = evaluate(good.images, open_prompt=wrong[:50])
    assert styled["attr_tv"].value == pytest.approx(bad["attr_tv"].value, abs=0.1)
    assert styled["attr_tv"].n == 50
    assert styled["attr_tv"].details["samples"].startswith("open prompt")
    assert styled["attr_tv"].details["tv_prompted"] == pytest.approx(values["attr_tv"].value)
    assert styled["attr_consistency"].value == pytest.approx(values["attr_consistency"].value)
    inputs = MetricInputs(fake=good.images, **common)
    utility = UtilityMetric(classifier=CLF).evaluate(inputs)[0]
    assert utility.value > max(utility.details["majority_baseline"].values())
    wilson = wilson_interval(proportion=utility.value, n=len(reference))
    assert (utility.ci_low, utility.ci_high) == (wilson.low, wilson.high)
    with pytest.raises(ConfigError, match="fake_attributes"):
        UtilityMetric(classifier=CLF).evaluate(
            MetricInputs(fake=good.images, fake_captions=[], reference=reference)
        )


def test_tv_replicates_equal_the_distance_of_each_half_computed_directly() -> None:
    from isoeps.metrics.attributes import frequencies, total_variation, tv_replicates
    from isoeps.metrics.bootstrap import half_samples

    rng = np.random.default_rng(0)
    schema = {"a": ["x", "y", "z"], "b": ["no", "yes"]}
    predicted = {"a": rng.integers(0, 3, 40), "b": rng.integers(0, 2, 40)}
    private = {"a": rng.integers(0, 3, 90), "b": rng.integers(0, 2, 90), "c": np.zeros(90, int)}
    counts = half_samples(n=40, resamples=5, seed=1)
    replicates = tv_replicates(predicted, private, schema, counts=counts)
    for row, replicate in zip(counts, replicates, strict=True):
        half = row.astype(bool)
        direct = np.mean(
            [
                total_variation(
                    frequencies(predicted[k][half], len(schema[k])),
                    frequencies(private[k], len(schema[k])),
                )
                for k in ("a", "b")
            ]
        )
        assert replicate == pytest.approx(direct)
