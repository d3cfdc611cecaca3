"""CLIP score math, the tiny-clip-eval evaluator, and clip:<arch>:<path> loading."""

from __future__ import annotations

import json

import numpy as np
import pytest
from metrics_fixtures import shape_split

from isoeps.errors import ConfigError
from isoeps.metrics.backbones import OpenClipBackbone, load_backbone
from isoeps.metrics.base import MetricInputs
from isoeps.metrics.clip_score import CLIPScoreMetric, clip_scores
from isoeps.metrics.tiny_clip import APPROXIMATE_LABEL, TinyClipBackbone

TINY = {
    "width": 32,
    "layers": 1,
    "text_width": 32,
    "text_layers": 1,
    "embed_dim": 32,
    "steps": 60,
    "batch_size": 48,
    "lr": 3e-3,
}


def test_clip_scores_clamp_per_pair_not_the_mean() -> None:
    images = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    texts = np.array([[1.0, 0.0], [-1.0, 0.0], [1.0, 1.0]])
    scores = clip_scores(images, texts)
    np.testing.assert_allclose(scores, [100.0, 0.0, 100 / np.sqrt(2)])
    # torchmetrics-style clamping of the mean would give (100 - 100 + 70.7) / 3 instead.
    assert scores.mean() == pytest.approx((100 + 100 / np.sqrt(2)) / 3)


def test_clip_score_without_captions_is_an_error() -> None:
    split = shape_split(8)
    inputs = MetricInputs(fake=split.images, fake_captions=[], reference=split, eval=split)
    with pytest.raises(ValueError, match="eval captions"):
        CLIPScoreMetric(tiny_clip=TINY).evaluate(inputs)


def test_tiny_clip_needs_the_eval_split() -> None:
    with pytest.raises(ConfigError, match="eval split"):
        load_backbone("tiny-clip-eval", eval_split=None)


@pytest.mark.slow
def test_tiny_clip_learns_and_is_labelled() -> None:
    eval_split = shape_split(300, seed=0)
    reference = shape_split(40, seed=1, split="reference")
    metric = CLIPScoreMetric(tiny_clip=TINY)
    captions = [c[0] for c in reference.captions]
    inputs = MetricInputs(
        fake=reference.images, fake_captions=captions, reference=reference, eval=eval_split
    )
    (matched,) = metric.evaluate(inputs)
    assert matched.backbone.startswith("tiny-clip-eval@")
    assert matched.details["approximate"] == APPROXIMATE_LABEL
    assert matched.n == 40 and matched.std is not None
    shuffled = captions[7:] + captions[:7]
    (mismatched,) = metric.evaluate(
        MetricInputs(
            fake=reference.images, fake_captions=shuffled, reference=reference, eval=eval_split
        )
    )
    assert matched.value > mismatched.value + 5, (matched.value, mismatched.value)
    # Cached: a second construction reuses the trained folder (same name, same weights).
    again = TinyClipBackbone(eval_split=eval_split, config=TINY)
    assert again.name == matched.backbone and again.weights_sha256 == matched.backbone_sha256


def test_clip_arch_path_loads_a_local_checkpoint(tmp_path) -> None:
    eval_split = shape_split(60, seed=0)
    tiny = TinyClipBackbone(eval_split=eval_split, config={**TINY, "steps": 2})
    meta = json.loads((tiny.path / "open_clip_config.json").read_text())
    assert meta["isoeps"]["note"] == APPROXIMATE_LABEL
    loaded = load_backbone(f"clip:my-arch:{tiny.path}")
    assert isinstance(loaded, OpenClipBackbone) and loaded.name == "clip:my-arch"
    assert loaded.weights_sha256 == tiny.weights_sha256
    assert loaded.text_features(["a red square"]).shape == (1, 32)
    with pytest.raises(ConfigError, match="clip:<arch>:<path>"):
        load_backbone("clip:only-arch")
    with pytest.raises(FileNotFoundError, match="not found"):
        load_backbone(f"clip:ViT-B-32-quickgelu:{tmp_path / 'missing.pt'}")
