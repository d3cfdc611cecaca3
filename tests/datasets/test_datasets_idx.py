"""The IDX reader: gzip and plain files, and a DataError naming the file for every bad input."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from isoeps.datasets.idx import (
    IMAGES_MAGIC,
    LABELS_MAGIC,
    read_idx,
    read_idx_header,
    read_idx_pair,
    write_idx,
)
from isoeps.errors import DataError


def _images(n: int = 5, side: int = 4) -> np.ndarray:
    return np.arange(n * side * side, dtype=np.uint8).reshape(n, side, side)


@pytest.mark.parametrize("name", ["x-images-idx3-ubyte.gz", "x-images-idx3-ubyte"])
def test_images_round_trip_gzip_and_plain(tmp_path: Path, name: str) -> None:
    images = _images()
    path = write_idx(tmp_path / name, images)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    read = read_idx(path, magic=IMAGES_MAGIC)
    assert read.dtype == np.uint8 and read.shape == (5, 4, 4)
    np.testing.assert_array_equal(read, images)
    assert read_idx_header(path, magic=IMAGES_MAGIC) == (5, 4, 4)


def test_header_is_big_endian_and_labels_read(tmp_path: Path) -> None:
    # Written by hand, not by write_idx, so that the reader is checked against the format.
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    path = tmp_path / "labels.gz"
    path.write_bytes(gzip.compress(b"\x00\x00\x08\x01" + struct.pack(">I", 5) + labels.tobytes()))
    np.testing.assert_array_equal(read_idx(path, magic=LABELS_MAGIC), labels)


def test_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"IDX file .*nope\.gz does not exist"):
        read_idx(tmp_path / "nope.gz", magic=IMAGES_MAGIC)
    with pytest.raises(DataError, match=r"nope\.gz does not exist"):
        read_idx_header(tmp_path / "nope.gz", magic=IMAGES_MAGIC)


def test_truncated_gzip_names_the_file(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "t-images.gz", _images(50, 8))
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(DataError, match=r"t-images\.gz is a truncated gzip file"):
        read_idx(path, magic=IMAGES_MAGIC)


def test_corrupt_gzip_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.gz"
    path.write_bytes(b"\x1f\x8b" + b"not really gzip at all" * 4)
    with pytest.raises(DataError, match=r"bad\.gz is not a valid gzip file"):
        read_idx(path, magic=IMAGES_MAGIC)


def test_wrong_magic_says_which_file_it_might_be(tmp_path: Path) -> None:
    labels = write_idx(tmp_path / "labels.gz", np.zeros(5, np.uint8))
    with pytest.raises(DataError, match=r"labels\.gz: magic number 2049, expected 2051.*labels"):
        read_idx(labels, magic=IMAGES_MAGIC)
    with pytest.raises(DataError, match=r"labels\.gz: not an IDX images file"):
        read_idx_header(labels, magic=IMAGES_MAGIC)


@pytest.mark.parametrize("delta", [-3, 7])
def test_data_length_must_match_header(tmp_path: Path, delta: int) -> None:
    payload = struct.pack(">IIII", IMAGES_MAGIC, 5, 4, 4) + bytes(5 * 16 + delta)
    path = tmp_path / "short.gz"
    path.write_bytes(gzip.compress(payload))
    with pytest.raises(
        DataError, match=rf"short\.gz: header says 5 x 4 x 4 = 80 bytes .* {80 + delta} follow"
    ):
        read_idx(path, magic=IMAGES_MAGIC)


def test_too_short_for_a_header(tmp_path: Path) -> None:
    path = tmp_path / "tiny"
    path.write_bytes(struct.pack(">I", IMAGES_MAGIC) + b"\x00\x00")
    with pytest.raises(DataError, match=r"tiny: 6 bytes, too short for a 3-d header"):
        read_idx(path, magic=IMAGES_MAGIC)


def test_pair_counts_must_agree(tmp_path: Path) -> None:
    images = write_idx(tmp_path / "i.gz", _images(5))
    labels = write_idx(tmp_path / "l.gz", np.zeros(4, np.uint8))
    with pytest.raises(DataError, match=r"i\.gz and .*l\.gz: 5 images but 4 labels"):
        read_idx_pair(images, labels)
    good = write_idx(tmp_path / "l5.gz", np.arange(5, dtype=np.uint8))
    read_images, read_labels = read_idx_pair(images, good)
    assert len(read_images) == len(read_labels) == 5
