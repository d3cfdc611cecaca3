"""CLIP score under its two definitions, from one set of image and caption features.

- ``clip_score``: per pair ``100 * max(cos(image, caption), 0)``, then the mean (with std and
  n): the clamp is per pair, as CLIPScore (Hessel et al. 2021) defines it.
- ``clip_torchmetrics``: ``max(100 * mean(cos), 0)``, as
  ``torchmetrics.functional.multimodal.clip_score`` computes it (tested against it): the clamp
  is on the mean, so negative pairs cancel positive ones. Many papers report this number.

The two agree when no pair has a negative cosine. Each sample is scored against its eval
caption (the plain caption, without any private token such as DPAgg-TI's, which means nothing
to CLIP). The default backbone is the offline ``tiny-clip-eval`` evaluator; pass
``clip:<arch>:<path>`` for a real CLIP. Both values carry a half-sampling interval over the
(sample, caption) pairs (:mod:`isoeps.metrics.bootstrap`).
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from isoeps.datasets.base import ImageSplit
from isoeps.metrics.backbones import Backbone, load_backbone
from isoeps.metrics.base import Metric, MetricInputs, MetricOptions, MetricValue
from isoeps.metrics.bootstrap import ci_seed, half_sampling_mean
from isoeps.metrics.common import CI_RESAMPLES, value
from isoeps.metrics.features import check_features
from isoeps.metrics.preprocess import check_images
from isoeps.metrics.tiny_clip import TinyClipConfig


def clip_cosines(image_features: np.ndarray, text_features: np.ndarray) -> np.ndarray:
    """Per-pair cosine similarity of row-aligned image and text features.

    Args:
        image_features: ``(N, D)`` image embeddings.
        text_features: ``(N, D)`` text embeddings, row ``i`` for image ``i``.

    Returns:
        float64 ``(N,)``, each in [-1, 1].

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
    return (image_features * text_features).sum(axis=1)


def clip_scores(cosines: np.ndarray) -> np.ndarray:
    """Per-pair CLIPScore (Hessel et al. 2021), ``100 * max(cos, 0)``.

    Args:
        cosines: per-pair cosines (:func:`clip_cosines`).

    Returns:
        float64 ``(N,)``, each in [0, 100]; their mean is ``clip_score``.
    """
    return 100 * np.clip(np.asarray(cosines, dtype=np.float64), 0, None)


#: ``details["definition"]`` of ``clip_torchmetrics``.
TORCHMETRICS = "max(100 * mean(cos), 0), as torchmetrics.functional.multimodal.clip_score"


def clip_torchmetrics(cosines: np.ndarray) -> float:
    """torchmetrics' CLIP score, ``max(100 * mean(cos), 0)``: the clamp on the mean.

    Args:
        cosines: per-pair cosines (:func:`clip_cosines`).

    Returns:
        The score, in [0, 100].
    """
    return max(100 * float(np.mean(cosines)), 0.0)


def clip_cosines_of(
    backbone: Backbone, images: np.ndarray, captions: list[str], *, batch_size: int = 64
) -> np.ndarray:
    """Per-pair cosines of images and their captions under ``backbone``.

    Args:
        backbone: a CLIP backbone (with a text tower).
        images: uint8 ``(N, 3, H, W)``.
        captions: one non-empty caption per image.
        batch_size: images per forward pass.

    Returns:
        float64 ``(N,)``, as :func:`clip_cosines`.

    Raises:
        ValueError: the images are invalid, or a caption is missing or empty.
    """
    check_images(images, what="clip score images")
    if len(captions) != images.shape[0] or any(not c for c in captions):
        raise ValueError(
            f"CLIP score needs one non-empty caption per image: got {len(captions)} captions "
            f"for {images.shape[0]} images"
        )
    return clip_cosines(
        backbone.features(images, batch_size=batch_size), backbone.text_features(list(captions))
    )


class CLIPScoreMetric(Metric):
    """CLIP score of samples against their eval captions, under both definitions."""

    name = "clip"
    needs = frozenset({"eval"})

    class Options(MetricOptions):
        """``tiny_clip``: the evaluator's architecture and recipe (``tiny-clip-eval`` only);
        ``ci_resamples``: half-samples behind each value's interval (0: none)."""

        backbone: str = "tiny-clip-eval"
        device: str | None = None
        batch_size: int = Field(default=64, ge=1)
        tiny_clip: TinyClipConfig | None = None
        reference_pairs: int = Field(default=256, ge=1)
        ci_resamples: int = Field(default=CI_RESAMPLES, ge=0)

    options: Options

    def _backbone(self, inputs: MetricInputs) -> Backbone:
        o = self.options
        device = o.device or inputs.device
        if o.backbone == "tiny-clip-eval":
            return load_backbone(
                o.backbone, device=device, eval_split=inputs.eval, config=o.tiny_clip
            )
        return load_backbone(o.backbone, device=device)

    def _reference_cosines(self, backbone: Backbone, reference: ImageSplit) -> np.ndarray:
        """What real images score against their own captions: the scale a reader compares to."""
        count = min(len(reference), self.options.reference_pairs)
        return clip_cosines_of(
            backbone,
            reference.images[:count],
            [c[0] for c in reference.captions[:count]],
            batch_size=self.options.batch_size,
        )

    def evaluate(self, inputs: MetricInputs) -> list[MetricValue]:
        """``clip_score`` (the per-pair clamp) and ``clip_torchmetrics`` (the clamp on the mean)
        from one pass of the backbone over the samples and their captions.

        Args:
            inputs: the samples with their eval captions, the reference split (its real
                images' scores are the scale in ``details``) and the eval split (trains
                ``tiny-clip-eval``).

        Returns:
            ``clip_score``, then ``clip_torchmetrics``.

        Raises:
            ValueError: no captions, or a backbone without a text tower.
        """
        check_images(inputs.fake, what="samples")
        if not inputs.fake_captions:
            raise ValueError("CLIP score needs the samples' eval captions (none were given)")
        backbone = self._backbone(inputs)
        if not backbone.has_text:
            raise ValueError(
                f"CLIP score needs a text-capable backbone, {backbone.name!r} is image-only"
            )
        batch_size = self.options.batch_size
        cosines = clip_cosines_of(
            backbone, inputs.fake, inputs.fake_captions, batch_size=batch_size
        )
        real = self._reference_cosines(backbone, inputs.reference)
        seed = ci_seed(seed=inputs.seed, purpose="clip")
        resamples = self.options.ci_resamples
        per_pair = clip_scores(cosines)
        # The clamp is monotone, so the interval of 100 * mean(cos), clipped at 0, is the
        # interval of its clamped mean; both values use the same halves.
        definitions = {
            "clip_score": (per_pair, float(per_pair.mean()), "mean of 100 * max(cos, 0)"),
            "clip_torchmetrics": (100 * cosines, clip_torchmetrics(cosines), TORCHMETRICS),
        }
        return [
            value(
                name,
                number,
                higher_is_better=True,
                n=len(cosines),
                backbone=backbone,
                std=scores.std() if name == "clip_score" else None,
                details={
                    "definition": definition,
                    "reference_real_score": _score_as(name, real),
                    "reference_real_n": len(real),
                },
                ci=half_sampling_mean(
                    scores=scores, resamples=resamples, seed=seed, bounds=(0.0, 100.0)
                ),
            )
            for name, (scores, number, definition) in definitions.items()
        ]


def _score_as(name: str, cosines: np.ndarray) -> float:
    """The real images' score under the value ``name``'s definition."""
    if name == "clip_torchmetrics":
        return clip_torchmetrics(cosines)
    return float(clip_scores(cosines).mean())
