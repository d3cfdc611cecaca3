"""Tiny image fixtures for the metric tests (made here, no dataset needed)."""

from __future__ import annotations

import numpy as np

from isoeps.datasets.base import ImageSplit

COLOURS = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (40, 60, 220)}
SHAPES = ("square", "bar")


def textured_images(n: int, *, size: int = 32, seed: int = 0) -> np.ndarray:
    """Smooth blobs plus fine noise: content with both low and high frequencies."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    images = np.empty((n, 3, size, size), dtype=np.uint8)
    for i in range(n):
        cx, cy, r = rng.uniform(0.2, 0.8, size=3)
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (0.05 + 0.1 * r))
        colour = rng.uniform(40, 255, size=3)
        image = blob[None] * colour[:, None, None] + rng.normal(0, 20, size=(3, size, size))
        images[i] = np.clip(image, 0, 255).astype(np.uint8)
    return images


def shape_split(n: int, *, size: int = 32, seed: int = 0, split: str = "eval") -> ImageSplit:
    """A coloured square or bar on grey; captions and attributes say which."""
    rng = np.random.default_rng(seed)
    names = list(COLOURS)
    colour_idx = rng.integers(0, len(names), size=n)
    shape_idx = rng.integers(0, len(SHAPES), size=n)
    images = np.full((n, 3, size, size), 128, dtype=np.uint8)
    images = np.clip(images + rng.normal(0, 8, images.shape), 0, 255).astype(np.uint8)
    for i in range(n):
        x0, y0 = rng.integers(2, size // 2, size=2)
        h, w = (size // 2, size // 2) if shape_idx[i] == 0 else (size // 2, size // 6)
        images[i, :, y0 : y0 + h, x0 : x0 + w] = np.array(COLOURS[names[colour_idx[i]]])[
            :, None, None
        ]
    captions = [
        [f"a {names[c]} {SHAPES[s]}", f"{SHAPES[s]}, {names[c]}"]
        for c, s in zip(colour_idx, shape_idx)
    ]
    return ImageSplit(
        dataset="test-shapes",
        split=split,
        ids=[f"{split}-{i}" for i in range(n)],
        images=images,
        captions=captions,
        attributes={"colour": colour_idx, "shape": shape_idx},
        attribute_schema={"colour": names, "shape": list(SHAPES)},
    )
