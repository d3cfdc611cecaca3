from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from isoeps.datasets import load_split, read_dpimagebench_npz, write_dpimagebench_npz
from isoeps.errors import DataError


def test_roundtrip(tmp_path: Path) -> None:
    images = np.random.default_rng(0).integers(0, 256, (5, 3, 8, 8), dtype=np.uint8)
    path = tmp_path / "gen.npz"
    write_dpimagebench_npz(
        path, images=images, labels=np.arange(5), captions=[f"c{i}" for i in range(5)]
    )
    with np.load(path) as data:
        assert data["x"].dtype == np.float32 and data["x"].shape == (5, 3, 8, 8)
        assert 0.0 <= data["x"].min() and data["x"].max() <= 1.0
        assert data["y"].tolist() == [0, 1, 2, 3, 4]
    back, labels, captions = read_dpimagebench_npz(path)
    assert np.array_equal(back, images) and labels.tolist() == list(range(5))
    assert captions == [f"c{i}" for i in range(5)]
    split = load_split("dpimagebench", "reference", root=str(tmp_path), resolution=16)
    assert split.images.shape == (5, 3, 16, 16) and split.captions[3] == ["c3"]


def test_grayscale_and_no_captions(tmp_path: Path) -> None:
    path = tmp_path / "g.npz"
    np.savez(path, x=np.full((2, 1, 4, 4), 0.5, np.float32), y=np.array([3, 1]))
    images, labels, captions = read_dpimagebench_npz(path)
    assert images.shape == (2, 3, 4, 4) and (images == 128).all()
    assert captions is None and labels.tolist() == [3, 1]


@pytest.mark.parametrize(
    "x, y, message",
    [
        (np.zeros((2, 3, 4, 4), np.float64), None, "float32"),
        (np.full((2, 3, 4, 4), 1.5, np.float32), None, r"\[0, 1\]"),
        (np.zeros((2, 4, 4), np.float32), None, "shape"),
        (np.zeros((2, 3, 4, 4), np.float32), np.array([1, 2, 3]), "y must be 2 integer labels"),
    ],
)
def test_validation(tmp_path: Path, x, y, message: str) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, x=x, **({} if y is None else {"y": y}))
    with pytest.raises(DataError, match=message):
        read_dpimagebench_npz(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        read_dpimagebench_npz(tmp_path / "nope.npz")
