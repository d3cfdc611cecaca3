"""Metric options are typed pydantic models: strict, frozen, with the defaults metrics had."""

from __future__ import annotations

import pydantic
import pytest

from isoeps import registry
from isoeps.errors import ConfigError
from isoeps.metrics.base import Metric, MetricOptions

SHIPPED = ("attr", "clip", "fid", "kid", "mem", "pr", "spectrum", "utility")

#: The defaults the metrics' keyword arguments had before they became Options models: the
#: numbers of a suite that names no option must not change (``ci_resamples`` came later; it
#: sets only the values' intervals).
DEFAULTS = {
    "fid": {
        "backbone": "inception",
        "device": None,
        "batch_size": 64,
        "weights": None,
        "ci_resamples": 200,
    },
    "kid": {
        "backbone": "inception",
        "device": None,
        "batch_size": 64,
        "weights": None,
        "ci_resamples": 200,
        "num_subsets": 100,
        "subset_size": 1000,
    },
    "pr": {
        "backbone": "inception",
        "device": None,
        "batch_size": 64,
        "weights": None,
        "ci_resamples": 200,
        "k_pr": 3,
        "k_dc": 5,
        "chunk_size": 1024,
        "inclusive": False,
    },
    "clip": {
        "backbone": "tiny-clip-eval",
        "device": None,
        "batch_size": 64,
        "tiny_clip": None,
        "reference_pairs": 256,
        "ci_resamples": 200,
    },
    "mem": {
        "space": "pixels",
        "device": None,
        "max_set": 10_000,
        "near_copy_ratio": 1 / 3,
        "top": 10,
        "batch_size": 64,
    },
    "spectrum": {"levels": None, "device": None},
}


@pytest.mark.parametrize("name", SHIPPED)
def test_every_metric_has_a_strict_frozen_options_model(name):
    metric_class = registry.get("isoeps.metrics", name)
    assert issubclass(metric_class.Options, MetricOptions)
    assert metric_class.Options.model_config["extra"] == "forbid"
    metric = metric_class()
    assert isinstance(metric.options, metric_class.Options)
    with pytest.raises(pydantic.ValidationError):
        metric.options.device = "cuda"
    if name in DEFAULTS:
        assert metric.options.model_dump() == DEFAULTS[name]


def test_classifier_defaults_are_unchanged():
    from dataclasses import asdict

    from isoeps.metrics.attributes import EVAL_CLASSIFIER_STEPS

    recipe = {"size": 32, "width": 32, "batch_size": 128, "lr": 2e-3, "seed": 0}
    attr = registry.get("isoeps.metrics", "attr")()
    utility = registry.get("isoeps.metrics", "utility")()
    assert asdict(attr.options.classifier) == {**recipe, "steps": EVAL_CLASSIFIER_STEPS}
    assert asdict(utility.options.classifier) == {**recipe, "steps": 300}


@pytest.mark.parametrize("name", SHIPPED)
def test_an_unknown_option_names_the_field(name):
    metric_class = registry.get("isoeps.metrics", name)
    with pytest.raises(ConfigError) as info:
        metric_class(no_such_option=1)
    message = str(info.value)
    assert message.startswith(f"metrics.{name}.no_such_option: unknown field; known fields: ")
    for field in metric_class.Options.model_fields:
        assert field in message


@pytest.mark.parametrize(
    ("name", "options", "field"),
    [
        ("kid", {"subset_size": 1}, "metrics.kid.subset_size: "),
        ("pr", {"k_pr": "three"}, "metrics.pr.k_pr: "),
        ("attr", {"classifier": {"width": 12}}, "metrics.attr.classifier.width: "),
        ("attr", {"classifier": {"lr": 0}}, "metrics.attr.classifier.lr: "),
        ("utility", {"classifier": {"stpes": 1}}, "metrics.utility.classifier.stpes: unknown"),
        ("clip", {"tiny_clip": {"layer": 1}}, "metrics.clip.tiny_clip.layer: unknown"),
        ("spectrum", {"levels": 0}, "metrics.spectrum.levels: "),
    ],
)
def test_a_malformed_option_names_the_field(name, options, field):
    with pytest.raises(ConfigError) as info:
        registry.get("isoeps.metrics", name)(**options)
    assert str(info.value).startswith(field), str(info.value)


def test_from_options_names_the_suite_label():
    fid = registry.get("isoeps.metrics", "fid")
    with pytest.raises(ConfigError, match=r"^metrics\.my-fid\.batchsize: unknown field"):
        fid.from_options({"batchsize": 8}, field="metrics.my-fid")
    assert fid.from_options({"batch_size": 8}).options.batch_size == 8


def test_a_plugin_metric_with_keyword_arguments_of_its_own_still_works():
    class Offset(Metric):
        name = "offset"

        def __init__(self, offset: float = 0.0) -> None:
            self.offset = offset

        def evaluate(self, inputs):
            return []

    assert Offset.from_options({"offset": 2.0}).offset == 2.0
    with pytest.raises(ConfigError, match=r"^metrics\.offset: .*ofset"):
        Offset.from_options({"ofset": 2.0})
