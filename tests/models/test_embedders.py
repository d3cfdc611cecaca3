"""The pixel-PCA embedder against scikit-learn's PCA, its round trip, and nearest()."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

from isoeps.errors import ConfigError, MissingWeightsError
from isoeps.models.embedders import PixelPCAEmbedder, nearest


def _images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3, 8, 8), dtype=np.uint8)


def test_embedding_matches_sklearn_pca_transform() -> None:
    public, other = _images(50), _images(7, seed=1)
    embedder = PixelPCAEmbedder.fit(public, dim=5, size=4, seed=0)
    flat = lambda x: (
        torch.nn.functional.interpolate(torch.as_tensor(x).float() / 255, size=(4, 4), mode="area")
        .flatten(1)
        .numpy()
    )
    reference = PCA(n_components=5, svd_solver="randomized", random_state=0).fit(flat(public))
    np.testing.assert_allclose(embedder.embed(other), reference.transform(flat(other)), atol=1e-4)
    assert embedder.dim == 5


def test_round_trip_and_clear_errors(tmp_path) -> None:
    embedder = PixelPCAEmbedder.fit(_images(20), dim=3, size=8, seed=0)
    embedder.save(tmp_path)
    loaded = PixelPCAEmbedder.load(tmp_path)
    np.testing.assert_array_equal(loaded.embed(_images(4)), embedder.embed(_images(4)))
    with pytest.raises(MissingWeightsError, match="embedder.npz"):
        PixelPCAEmbedder.load(tmp_path / "absent")
    with pytest.raises(ConfigError, match="dim=30"):
        PixelPCAEmbedder.fit(_images(20), dim=30, size=8, seed=0)


def test_nearest_picks_the_closest_candidate() -> None:
    candidates = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    queries = np.array([[9.0, 1.0], [0.5, 0.2], [1.0, 8.0]])
    np.testing.assert_array_equal(nearest(queries, candidates), [1, 0, 2])
