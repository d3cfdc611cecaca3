"""Memorisation: is each sample nearer to the training images than to unseen ones?

For each sample, its nearest-neighbour distance to the private (training) images and to an
EQUAL-SIZE held-out set from the reference split, excluding the reference record whose caption
prompted the sample (when ``fake_prompt_source_ids`` is given; recorded either way) (a prompt pulls its sample toward its own image). Equal sizes matter: the
larger set would otherwise win by chance. Both sets have ``m = min(n_private, n_reference - 1,
max_set)`` images; each sample sees ``m`` held-out images (its own source, or else one fixed
extra, is left out of a pool of ``m + 1``).

- ``mem_closer_to_train``: the fraction of samples whose training distance is smaller. About
  0.5 when the generator does not memorise; lower is better.
- ``mem_near_copy_rate``: the fraction with ``d_train < near_copy_ratio * d_heldout``.
- ``mem_extraction_near_copy_rate`` (when ``MetricInputs.extraction`` is given: samples
  prompted by training captions): the same rate, plus how often the nearest training image is
  the prompt's own source.

Distances are Euclidean, in pixels ([0, 1], at the private resolution) by default, or in a
backbone's feature space. Details hold only ids and distances of the closest pairs, never
images; figures of them need ``--show-private``. These numbers are not DP.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from isoeps.errors import ConfigError
from isoeps.metrics.backbones import load_backbone
from isoeps.metrics.base import Metric, MetricInputs, MetricOptions, MetricValue
from isoeps.metrics.common import value
from isoeps.metrics.features import image_features
from isoeps.metrics.preprocess import check_images, match_resolution


def nearest(
    queries: np.ndarray,
    keys: np.ndarray,
    *,
    k: int = 1,
    chunk_size: int = 1024,
    device: str = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` smallest Euclidean distances (and indices) from each query to ``keys``.

    Args:
        queries: ``(N, D)``.
        keys: ``(M, D)``.
        k: how many neighbours; capped at M.
        chunk_size: queries per distance block.
        device: where the distances are computed (float32).

    Returns:
        ``(distances, indices)``, each ``(N, min(k, M))``, nearest first.
    """
    import torch

    q = torch.as_tensor(queries, dtype=torch.float32, device=device)
    kt = torch.as_tensor(keys, dtype=torch.float32, device=device)
    k_sq = (kt * kt).sum(1)
    dists, indices = [], []
    with torch.inference_mode():
        for start in range(0, q.shape[0], chunk_size):
            block = q[start : start + chunk_size]
            sq = ((block * block).sum(1)[:, None] + k_sq[None] - 2 * block @ kt.T).clamp_min_(0)
            top = sq.topk(min(k, kt.shape[0]), dim=1, largest=False)
            dists.append(top.values.sqrt().cpu().numpy())
            indices.append(top.indices.cpu().numpy())
    return np.concatenate(dists), np.concatenate(indices)


class MemorisationMetric(Metric):
    name = "mem"
    needs = frozenset({"private", "extraction"})

    class Options(MetricOptions):
        """``space``: ``pixels`` or a backbone name, the space distances are measured in."""

        space: str = "pixels"
        device: str | None = None
        max_set: int = Field(default=10_000, ge=1)
        near_copy_ratio: float = Field(default=1 / 3, gt=0)
        top: int = Field(default=10, ge=0)
        batch_size: int = Field(default=64, ge=1)

    options: Options

    def _embed(
        self, images: np.ndarray, *, size: int, what: str, device: str
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if self.options.space == "pixels":
            images, record = match_resolution(images, size=size, what=what)
            return images.reshape(len(images), -1).astype(np.float32) / 255.0, record
        backbone = load_backbone(self.options.space, device=device)
        return image_features(backbone, images, batch_size=self.options.batch_size, what=what), {}

    def evaluate(self, inputs: MetricInputs) -> list[MetricValue]:
        """How often the samples sit nearer the training images than equal-size held-out ones.

        Args:
            inputs: the samples, the private (training) split, the reference split (the
                held-out pool), optionally ``fake_prompt_source_ids`` and the extraction
                samples.

        Returns:
            ``mem_closer_to_train`` and ``mem_near_copy_rate``, then
            ``mem_extraction_near_copy_rate`` when extraction samples are given.
        """
        fake = check_images(inputs.fake, what="samples")
        m = _set_size(inputs, len(fake), self.options.max_set)
        private, reference = inputs.private, inputs.reference
        train_idx, pool_idx = _draw_sets(inputs.seed, len(private), len(reference), m)
        device = self.options.device or inputs.device
        size = private.resolution
        train_feat, pool_feat, fake_feat, resized = self._embed_sets(
            private.images[train_idx], reference.images[pool_idx], fake, size=size, device=device
        )
        d_train, i_train = nearest(fake_feat, train_feat, device=device)
        d_train, i_train = d_train[:, 0], train_idx[i_train[:, 0]]
        source_ids = inputs.fake_prompt_source_ids
        # Without source ids (e.g. a folder of samples) nothing can be excluded: say so.
        d_held = self._held_out_distance(
            fake_feat,
            pool_feat,
            [reference.ids[i] for i in pool_idx],
            source_ids or [None] * len(fake),
            device,
        )
        values = self._sample_values(
            d_train,
            d_held,
            i_train,
            private_ids=private.ids,
            m=m,
            source_excluded=source_ids is not None,
            resized=resized,
        )
        if inputs.extraction is not None:
            values.append(
                self._extraction(
                    inputs,
                    train_feat=train_feat,
                    train_idx=train_idx,
                    pool_feat=pool_feat,
                    size=size,
                    device=device,
                    m=m,
                )
            )
        return values

    def _embed_sets(
        self,
        train: np.ndarray,
        pool: np.ndarray,
        fake: np.ndarray,
        *,
        size: int,
        device: str,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Features of the training set, the held-out pool and the samples (in that order),
        and how the samples were resized."""
        train_feat, _ = self._embed(train, size=size, what="private", device=device)
        pool_feat, _ = self._embed(pool, size=size, what="reference", device=device)
        fake_feat, resized = self._embed(fake, size=size, what="samples", device=device)
        return train_feat, pool_feat, fake_feat, resized

    def _sample_values(
        self,
        d_train: np.ndarray,
        d_held: np.ndarray,
        i_train: np.ndarray,
        *,
        private_ids: list[str],
        m: int,
        source_excluded: bool,
        resized: dict[str, Any],
    ) -> list[MetricValue]:
        """``mem_closer_to_train`` (with the closest pairs) and ``mem_near_copy_rate``."""
        closer = d_train < d_held
        near = d_train < self.options.near_copy_ratio * d_held
        order = np.argsort(d_train)[: self.options.top]
        details = {
            "space": self.options.space,
            "set_size": int(m),
            "mean_d_train": float(d_train.mean()),
            "mean_d_heldout": float(d_held.mean()),
            "near_copy_ratio": self.options.near_copy_ratio,
            "prompt_source_excluded": source_excluded,
            "not_dp": "reads the private split after the release",
            **resized,
        }
        pairs = [
            {
                "sample": int(j),
                "private_id": private_ids[i_train[j]],
                "d_train": float(d_train[j]),
                "d_heldout": float(d_held[j]),
            }
            for j in order
        ]
        return [
            value(
                "mem_closer_to_train",
                closer.mean(),
                higher_is_better=False,
                n=len(d_train),
                details=details,
                artifacts={"closest_pairs": pairs},
            ),
            value(
                "mem_near_copy_rate",
                near.mean(),
                higher_is_better=False,
                n=len(d_train),
                details={
                    "space": self.options.space,
                    "set_size": int(m),
                    "near_copy_ratio": self.options.near_copy_ratio,
                },
            ),
        ]

    @staticmethod
    def _held_out_distance(fake_feat, pool_feat, pool_ids, source_ids, device) -> np.ndarray:
        """Nearest distance to the pool minus one image: the sample's source, or the last."""
        d, idx = nearest(fake_feat, pool_feat, k=2, device=device)
        position = {record_id: p for p, record_id in enumerate(pool_ids)}
        excluded = np.array([position.get(s, len(pool_ids) - 1) for s in source_ids])
        return np.where(idx[:, 0] == excluded, d[:, 1], d[:, 0])

    def _extraction(
        self, inputs: MetricInputs, *, train_feat, train_idx, pool_feat, size, device, m
    ) -> MetricValue:
        extraction = check_images(inputs.extraction, what="extraction samples")
        feat, _ = self._embed(extraction, size=size, what="extraction samples", device=device)
        d_train, i_train = nearest(feat, train_feat, device=device)
        d_held, _ = nearest(feat, pool_feat[:m], device=device)
        near = d_train[:, 0] < self.options.near_copy_ratio * d_held[:, 0]
        details: dict[str, Any] = {
            "space": self.options.space,
            "set_size": int(m),
            "near_copy_ratio": self.options.near_copy_ratio,
        }
        if inputs.extraction_source_ids is not None:
            nearest_ids = [inputs.private.ids[train_idx[i]] for i in i_train[:, 0]]
            hits = [a == b for a, b in zip(nearest_ids, inputs.extraction_source_ids)]
            details["nearest_is_source_rate"] = float(np.mean(hits))
        return value(
            "mem_extraction_near_copy_rate",
            near.mean(),
            higher_is_better=False,
            n=len(extraction),
            details=details,
        )


def _set_size(inputs: MetricInputs, n_fake: int, max_set: int) -> int:
    """``m``, the size of both the training and the held-out set; raise on unusable inputs."""
    if inputs.private is None:
        raise ConfigError("memorisation needs the private (training) split")
    source_ids = inputs.fake_prompt_source_ids
    if source_ids is not None and len(source_ids) != n_fake:
        raise ConfigError(
            f"memorisation needs one prompt source id per sample (fake_prompt_source_ids): "
            f"got {len(source_ids)} for {n_fake} samples"
        )
    m = min(len(inputs.private), len(inputs.reference) - 1, max_set)
    if m < 1:
        raise ConfigError(f"memorisation needs >= 2 reference images, got {len(inputs.reference)}")
    return m


def _draw_sets(
    seed: int, n_private: int, n_reference: int, m: int
) -> tuple[np.ndarray, np.ndarray]:
    """The ``m`` training indices (sorted), then the ``m + 1`` held-out pool indices."""
    rng = np.random.default_rng(seed)
    train_idx = np.sort(rng.choice(n_private, size=m, replace=False))
    pool_idx = rng.choice(n_reference, size=m + 1, replace=False)
    return train_idx, pool_idx
