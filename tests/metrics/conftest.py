"""Fixtures for the metric tests."""

from __future__ import annotations

import numpy as np
import pytest
from metrics_fixtures import textured_images


@pytest.fixture
def textures() -> np.ndarray:
    return textured_images(12)


@pytest.fixture(scope="session")
def lfw_faces() -> tuple[np.ndarray, np.ndarray]:
    """Real photographs: scikit-image's ``lfw_subset.npy``, as uint8 ``(100, 3, 25, 25)`` each.

    Returns:
        ``(faces, non_faces)``: the file's first 100 images (LFW face crops) and its last 100
        (background patches of the same photos), gray in three equal channels.
    """
    from importlib.resources import files

    path = files("skimage") / "data" / "lfw_subset.npy"
    if not path.is_file():
        pytest.skip(f"scikit-image's {path} is not installed")
    floats = np.load(str(path))  # float64 (200, 25, 25) in [0, 1]
    assert floats.shape == (200, 25, 25) and 0.0 <= floats.min() and floats.max() <= 1.0
    gray = np.rint(floats * 255.0).astype(np.uint8)
    images = np.ascontiguousarray(np.repeat(gray[:, None], 3, axis=1))
    return images[:100], images[100:]
