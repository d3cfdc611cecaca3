"""Public image embedders for methods that compare images, such as Private Evolution's votes.

``pixel-pca``: images are resized (area average) to ``size`` x ``size``, flattened and
projected on the first ``dim`` principal components of PUBLIC images (scikit-learn's ``PCA``,
fitted by :meth:`PixelPCAEmbedder.fit` on the public split only; its mean and components are
the whole state, saved as ``.npz``). It costs microseconds per image on a CPU, so a method can
embed every private record at every iteration, and it shares nothing with the backbones the
metrics use (FID's Inception, the CLIP encoders): a method that votes in FID's own feature
space would be favoured by FID.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from isoeps.errors import ConfigError, MissingWeightsError

EMBEDDER_FILE = "embedder.npz"


@dataclass(frozen=True)
class PixelPCAEmbedder:
    """PCA of area-resized pixels; ``mean`` is ``(size * size * 3,)``, ``components`` is
    ``(dim, size * size * 3)`` with orthonormal rows."""

    size: int
    mean: np.ndarray
    components: np.ndarray

    @property
    def dim(self) -> int:
        return int(self.components.shape[0])

    @classmethod
    def fit(cls, images: np.ndarray, *, dim: int, size: int, seed: int) -> PixelPCAEmbedder:
        """Fit the projection on public images.

        Args:
            images: uint8 ``(n, 3, H, W)`` PUBLIC images.
            dim: the number of principal components kept.
            size: the side the images are resized to before the projection.
            seed: the seed of scikit-learn's randomised SVD.

        Returns:
            The fitted embedder.

        Raises:
            ConfigError: ``dim`` exceeds what ``n`` images at ``size`` can give.
        """
        from sklearn.decomposition import PCA

        flat = _flatten(images, size)
        if not 1 <= dim <= min(flat.shape):
            raise ConfigError(
                f"pixel-pca embedder: dim={dim} must be in [1, {min(flat.shape)}] for "
                f"{flat.shape[0]} public images of {size}x{size}x3"
            )
        pca = PCA(n_components=dim, svd_solver="randomized", random_state=seed).fit(flat)
        return cls(
            size=size,
            mean=pca.mean_.astype(np.float32),
            components=pca.components_.astype(np.float32),
        )

    def embed(self, images: np.ndarray) -> np.ndarray:
        """float32 ``(n, dim)`` coordinates of uint8 ``(n, 3, H, W)`` images."""
        return (_flatten(images, self.size) - self.mean) @ self.components.T

    def save(self, directory: Path) -> None:
        np.savez(
            Path(directory) / EMBEDDER_FILE,
            size=self.size,
            mean=self.mean,
            components=self.components,
        )

    @classmethod
    def load(cls, directory: Path) -> PixelPCAEmbedder:
        path = Path(directory) / EMBEDDER_FILE
        if not path.is_file():
            raise MissingWeightsError(f"pixel-pca embedder: {path} is missing")
        with np.load(path) as stored:
            return cls(
                size=int(stored["size"]), mean=stored["mean"], components=stored["components"]
            )


def _flatten(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 ``(n, 3, H, W)`` -> float32 ``(n, size * size * 3)`` in [0, 1], area-resized."""
    pixels = torch.as_tensor(np.asarray(images)).float() / 255.0
    if pixels.ndim != 4 or pixels.shape[1] != 3:
        raise ConfigError(f"embedder input must be (n, 3, H, W), got {tuple(pixels.shape)}")
    if pixels.shape[-1] != size or pixels.shape[-2] != size:
        pixels = torch.nn.functional.interpolate(pixels, size=(size, size), mode="area")
    return pixels.flatten(1).numpy()


def nearest(queries: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Index of each query's nearest candidate in L2 (ties: the lowest index).

    Args:
        queries: ``(n, d)``.
        candidates: ``(k, d)``, k >= 1.

    Returns:
        int64 ``(n,)`` indices into ``candidates``.
    """
    distances = torch.cdist(
        torch.as_tensor(queries, dtype=torch.float64),
        torch.as_tensor(candidates, dtype=torch.float64),
    )
    return distances.argmin(dim=1).numpy().astype(np.int64)
