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
        (np.zeros((2, 3, 4, 4), np.float16), None, "float32"),
        (np.zeros((2, 3, 4, 4), np.uint8), None, "float32"),
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


def test_float64_as_dpimagebench_pe_writes_it(tmp_path: Path) -> None:
    path = tmp_path / "pe.npz"
    np.savez(path, x=np.full((2, 3, 4, 4), 0.25), y=np.array([0, 1]))  # float64
    images, labels, _ = read_dpimagebench_npz(path)
    assert images.dtype == np.uint8 and (images == 64).all() and labels.tolist() == [0, 1]


def test_truncation_matches_to_pil_image(tmp_path: Path) -> None:
    """DPImageBench's evaluator quantises through ToPILImage, which truncates."""
    from torchvision.transforms import ToPILImage

    x = np.random.default_rng(1).random((3, 1, 6, 6), dtype=np.float32)
    path = tmp_path / "gen.npz"
    np.savez(path, x=x, y=np.zeros(3, np.int64))
    truncated, _, _ = read_dpimagebench_npz(path, quantise="truncate")
    rounded, _, _ = read_dpimagebench_npz(path)
    import torch

    for i in range(3):
        expected = np.asarray(ToPILImage()(torch.from_numpy(x[i])))
        assert np.array_equal(truncated[i, 0], expected)
    assert (rounded != truncated).any()  # the two conventions differ on these pixels


def test_export_grayscale_padded_class_conditional(tmp_path: Path) -> None:
    """A padded grayscale source exports as DPImageBench's own F-MNIST files look: 28x28,
    one channel, float32 in [0, 1], the true labels. Read as its eval.py does."""
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (4, 1, 28, 28), dtype=np.uint8)
    padded = np.zeros((4, 3, 32, 32), np.uint8)
    padded[:, :, 2:30, 2:30] = gray
    path = tmp_path / "gen.npz"
    labels = np.array([3, 0, 9, 3])
    write_dpimagebench_npz(path, images=padded, labels=labels, channels=1, padding=2)
    syn = np.load(path)  # eval.py: syn = np.load(...); syn["x"], syn["y"]
    syn_data, syn_labels = syn["x"], syn["y"]
    assert syn_data.dtype == np.float32 and syn_data.shape == (4, 1, 28, 28)
    assert syn_labels.dtype == np.int64 and syn_labels.tolist() == labels.tolist()
    assert np.array_equal(np.rint(syn_data * 255).astype(np.uint8), gray)


@pytest.mark.parametrize(
    "options, message", [({"channels": 2}, "channels"), ({"padding": 4}, "padding")]
)
def test_export_rejects_bad_geometry(tmp_path: Path, options, message: str) -> None:
    images = np.zeros((1, 3, 8, 8), np.uint8)
    with pytest.raises(ValueError, match=message):
        write_dpimagebench_npz(tmp_path / "x.npz", images=images, **options)


def test_export_of_colour_samples_of_a_gray_source_evaluates_as_isoeps_does(tmp_path: Path) -> None:
    """DPImageBench reads the one-channel file through ToPILImage (truncation); that must give
    the pixels isoeps's own dpimagebench metrics derive from the same colour samples."""
    from isoeps.metrics.dpimagebench.preprocess import to_sensitive_channels, truncate_unit

    colour = np.random.default_rng(3).integers(0, 256, (5, 3, 8, 8), dtype=np.uint8)
    path = tmp_path / "gen.npz"
    write_dpimagebench_npz(path, images=colour, channels=1)
    with np.load(path) as data:
        read_there = truncate_unit(np.clip(data["x"], 0.0, 1.0))[:, 0]
    here, record = to_sensitive_channels(colour, gray=True)
    assert record and np.array_equal(read_there, here[:, 0])
