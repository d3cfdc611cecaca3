"""Fixtures for the metric tests."""

from __future__ import annotations

import numpy as np
import pytest
from metrics_fixtures import textured_images


@pytest.fixture
def textures() -> np.ndarray:
    return textured_images(12)
