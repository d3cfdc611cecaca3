"""Backbone features with checks and caches.

Real-set features are computed once per (dataset, split, content fingerprint, resolution,
resize mode, n, backbone name and sha256) and stored under ``<cache>/reference-features``
behind a file lock. Sample features are memoised in-process by content hash, so FID, KID and
PRDC on the same cell run the backbone once.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import numpy as np

from isoeps.cache import cache_path, content_key, file_lock
from isoeps.cache_bundle import seed_from_shipped
from isoeps.datasets.base import ImageSplit
from isoeps.log import get_logger
from isoeps.metrics.backbones import Backbone

log = get_logger(__name__)

_MEMO_SIZE = 4
_memo: OrderedDict[tuple[str, str, str], np.ndarray] = OrderedDict()


def check_features(features: np.ndarray, *, what: str) -> np.ndarray:
    """Refuse NaN/inf features or a wrong shape, naming ``what``.

    Args:
        features: the features.
        what: names them in errors.

    Returns:
        ``features`` as an array.

    Raises:
        ValueError: ``features`` is not a non-empty ``(N, D)`` array, or holds NaN or inf.
    """
    features = np.asarray(features)
    if features.ndim != 2 or features.shape[0] == 0:
        raise ValueError(f"{what}: features must be a non-empty (N, D) array, got {features.shape}")
    bad = ~np.isfinite(features)
    if bad.any():
        rows = np.unique(np.nonzero(bad)[0])
        raise ValueError(
            f"{what}: {bad.sum()} non-finite feature values (NaN/inf) in {len(rows)} rows, "
            f"first rows {rows[:5].tolist()}"
        )
    return features


def _images_hash(images: np.ndarray) -> str:
    digest = hashlib.sha1(str(images.shape).encode())
    digest.update(np.ascontiguousarray(images).tobytes())
    return digest.hexdigest()


def image_features(
    backbone: Backbone, images: np.ndarray, *, batch_size: int = 64, what: str = "samples"
) -> np.ndarray:
    """Backbone features of uint8 NCHW images (memoised in-process by content).

    Args:
        backbone: the feature backbone.
        images: uint8 ``(N, 3, H, W)``.
        batch_size: images per forward pass.
        what: names the images in errors.

    Returns:
        ``(N, feature_dim)``; a memoised array is returned as is, so do not modify it.

    Raises:
        ValueError: the features are not finite.
    """
    key = (backbone.name, backbone.weights_sha256, _images_hash(images))
    if key in _memo:
        _memo.move_to_end(key)
        return _memo[key]
    features = check_features(backbone.features(images, batch_size=batch_size), what=what)
    _memo[key] = features
    while len(_memo) > _MEMO_SIZE:
        _memo.popitem(last=False)
    return features


def reference_key(backbone: Backbone, split: ImageSplit) -> str:
    """The cache key of a real split's features under ``backbone``.

    Args:
        backbone: the feature backbone.
        split: the real split.

    Returns:
        A hex key over the split's identity and content, the backbone and its resize mode.
    """
    return content_key(
        {
            "dataset": split.dataset,
            "split": split.split,
            "fingerprint": split.fingerprint(),
            "resolution": split.resolution,
            "n": len(split),
            "resize_mode": backbone.resize_mode,
            "backbone": backbone.name,
            "sha256": backbone.weights_sha256,
        }
    )


def split_features(backbone: Backbone, split: ImageSplit, *, batch_size: int = 64) -> np.ndarray:
    """Features of a real split, from the reference-feature cache when present.

    Args:
        backbone: the feature backbone.
        split: the real split.
        batch_size: images per forward pass, on a miss.

    Returns:
        ``(N, feature_dim)``.

    Raises:
        ValueError: the (cached or computed) features are not finite.
    """
    folder = cache_path("reference-features", reference_key(backbone, split))
    target = folder / "features.npy"
    with file_lock(folder):
        if not target.is_file():
            seed_from_shipped("reference-features", folder.name)
        if target.is_file():
            return check_features(np.load(target), what=f"cached {split.dataset}/{split.split}")
        log.info(
            "computing %s features of %s/%s (n=%d)",
            backbone.name,
            split.dataset,
            split.split,
            len(split),
        )
        features = image_features(
            backbone, split.images, batch_size=batch_size, what=f"{split.dataset}/{split.split}"
        )
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / "features.tmp.npy"
        np.save(partial, features)
        partial.replace(target)
    return features
