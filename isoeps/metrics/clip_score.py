"""CLIP score: per pair ``100 * max(cos(image, caption), 0)``, then the mean (with std and n).

The clamp is per pair, as in Hessel et al. 2021; torchmetrics clamps the mean instead, which
lets negative pairs cancel positive ones. Each sample is scored against its eval caption (the
plain caption, without any private token such as DPAgg-TI's, which means nothing to CLIP).
The default backbone is the offline ``tiny-clip-eval`` evaluator; pass ``clip:<arch>:<path>``
for a real CLIP.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from isoeps.metrics.backbones import Backbone, load_backbone
from isoeps.metrics.base import Metric, MetricInputs, MetricOptions, MetricValue
from isoeps.metrics.common import value
from isoeps.metrics.features import check_features
from isoeps.metrics.preprocess import check_images
from isoeps.metrics.tiny_clip import TinyClipConfig


def clip_scores(image_features: np.ndarray, text_features: np.ndarray) -> np.ndarray:
    """Per-pair ``100 * max(cos, 0)`` of row-aligned image and text features.

    Args:
        image_features: ``(N, D)`` image embeddings.
        text_features: ``(N, D)`` text embeddings, row ``i`` for image ``i``.

    Returns:
        float64 ``(N,)``, each in [0, 100].

    Raises:
        ValueError: the shapes differ, or the features are non-finite or not ``(N, D)``.
    """
    image_features = check_features(image_features, what="clip image features").astype(np.float64)
    text_features = check_features(text_features, what="clip text features").astype(np.float64)
    if image_features.shape != text_features.shape:
        raise ValueError(
            f"CLIP score: {image_features.shape[0]} images vs {text_features.shape[0]} captions"
        )
    image_features /= np.linalg.norm(image_features, axis=1, keepdims=True)
    text_features /= np.linalg.norm(text_features, axis=1, keepdims=True)
    return 100 * np.clip((image_features * text_features).sum(axis=1), 0, None)


def clip_score_of(
    backbone: Backbone, images: np.ndarray, captions: list[str], *, batch_size: int = 64
) -> np.ndarray:
    """Per-pair CLIP scores of images against their captions under ``backbone``.

    Args:
        backbone: a CLIP backbone (with a text tower).
        images: uint8 ``(N, 3, H, W)``.
        captions: one non-empty caption per image.
        batch_size: images per forward pass.

    Returns:
        float64 ``(N,)``, as :func:`clip_scores`.

    Raises:
        ValueError: the images are invalid, or a caption is missing or empty.
    """
    check_images(images, what="clip score images")
    if len(captions) != images.shape[0] or any(not c for c in captions):
        raise ValueError(
            f"CLIP score needs one non-empty caption per image: got {len(captions)} captions "
            f"for {images.shape[0]} images"
        )
    return clip_scores(
        backbone.features(images, batch_size=batch_size), backbone.text_features(list(captions))
    )


class CLIPScoreMetric(Metric):
    """Mean per-pair CLIP score of samples against their eval captions."""

    name = "clip"
    needs = frozenset({"eval"})

    class Options(MetricOptions):
        """``tiny_clip``: the evaluator's architecture and recipe (``tiny-clip-eval`` only)."""

        backbone: str = "tiny-clip-eval"
        device: str | None = None
        batch_size: int = Field(default=64, ge=1)
        tiny_clip: TinyClipConfig | None = None
        reference_pairs: int = Field(default=256, ge=1)

    options: Options

    def _backbone(self, inputs: MetricInputs) -> Backbone:
        o = self.options
        device = o.device or inputs.device
        if o.backbone == "tiny-clip-eval":
            return load_backbone(
                o.backbone, device=device, eval_split=inputs.eval, config=o.tiny_clip
            )
        return load_backbone(o.backbone, device=device)

    def evaluate(self, inputs: MetricInputs) -> list[MetricValue]:
        check_images(inputs.fake, what="samples")
        if not inputs.fake_captions:
            raise ValueError("CLIP score needs the samples' eval captions (none were given)")
        backbone = self._backbone(inputs)
        if not backbone.has_text:
            raise ValueError(
                f"CLIP score needs a text-capable backbone, {backbone.name!r} is image-only"
            )
        scores = clip_score_of(
            backbone, inputs.fake, inputs.fake_captions, batch_size=self.options.batch_size
        )
        # What real images score against their own captions: the scale a reader compares to.
        reference = inputs.reference
        count = min(len(reference), self.options.reference_pairs)
        real = clip_score_of(
            backbone,
            reference.images[:count],
            [c[0] for c in reference.captions[:count]],
            batch_size=self.options.batch_size,
        )
        details = {"reference_real_score": float(real.mean()), "reference_real_n": int(count)}
        return [
            value(
                "clip_score",
                scores.mean(),
                higher_is_better=True,
                n=len(scores),
                backbone=backbone,
                std=scores.std(),
                details=details,
            )
        ]
