"""Tiny on-disk dataset trees (COCO, MM-CelebA-HQ, image folders) written with PIL."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def write_jpeg(path: Path, *, seed: int, size: tuple[int, int] = (40, 30)) -> np.ndarray:
    """A random-ish RGB JPEG (smooth, so JPEG keeps it recognisable); returns its pixels."""
    rng = np.random.default_rng(seed)
    w, h = size
    base = rng.integers(0, 255, (3, 3, 3)).astype(np.float64)
    ys, xs = np.linspace(0, 2, h), np.linspace(0, 2, w)
    pixels = np.stack(
        [
            np.interp(ys[:, None] + xs[None, :] * 0, [0, 1, 2], base[:, 0, c]) * 0.5
            + np.interp(xs[None, :] + ys[:, None] * 0, [0, 1, 2], base[0, :, c]) * 0.5
            for c in range(3)
        ],
        axis=-1,
    )
    array = np.clip(pixels + rng.normal(0, 8, pixels.shape), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, quality=95)
    return array


def make_coco_pool(
    root: Path,
    pool: str,
    ids,
    *,
    captions_per_image: int = 2,
    size: tuple[int, int] = (40, 30),
    seed_offset: int = 0,
) -> Path:
    images, annotations = [], []
    for image_id in ids:
        name = f"{image_id:012d}.jpg"
        write_jpeg(root / pool / name, seed=image_id + seed_offset, size=size)
        images.append({"id": image_id, "file_name": name, "height": size[1], "width": size[0]})
        for k in range(captions_per_image):
            annotations.append(
                {"id": image_id * 10 + k, "image_id": image_id, "caption": f"photo {image_id} #{k}"}
            )
    path = root / "annotations" / f"captions_{pool}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"images": images, "annotations": annotations}))
    return path


@pytest.fixture
def coco_root(tmp_path: Path) -> Path:
    root = tmp_path / "coco"
    make_coco_pool(root, "train2017", range(1, 25))
    make_coco_pool(root, "val2017", range(1000, 1012))
    return root


ATTRIBUTE_NAMES = ["Eyeglasses", "Male", "Smiling"]


@pytest.fixture
def celeba_root(tmp_path: Path) -> Path:
    root = tmp_path / "mmceleba"
    rows = []
    for i in range(20):
        write_jpeg(root / "CelebA-HQ-img" / f"{i}.jpg", seed=500 + i, size=(32, 32))
        values = [1 if (i >> k) & 1 else -1 for k in range(len(ATTRIBUTE_NAMES))]
        rows.append(f"{i}.jpg " + " ".join(str(v) for v in values))
        (root / "celeba-caption").mkdir(parents=True, exist_ok=True)
        (root / "celeba-caption" / f"{i}.txt").write_text(
            "\n".join(f"face {i} caption {k}" for k in range(10)) + "\n"
        )
    (root / "CelebAMask-HQ-attribute-anno.txt").write_text(
        f"{len(rows)}\n{' '.join(ATTRIBUTE_NAMES)}\n" + "\n".join(rows) + "\n"
    )
    return root
