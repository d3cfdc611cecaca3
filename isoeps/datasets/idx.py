"""IDX files (the MNIST family's format), gzip-compressed or plain.

An IDX file is a big-endian header, then the data: two zero bytes, a type byte (0x08:
unsigned byte), the number of dimensions, one big-endian uint32 per dimension, then the
values. Images are magic 2051 (``0x00000803``: uint8, 3 dimensions ``N, H, W``), labels
magic 2049 (``0x00000801``: uint8, 1 dimension ``N``). A file is read whole and viewed with
``numpy.frombuffer``: 60,000 images decode in well under a second once gunzipped.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from isoeps.errors import DataError

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
_DIMENSIONS = {IMAGES_MAGIC: 3, LABELS_MAGIC: 1}
_WHAT = {IMAGES_MAGIC: "images", LABELS_MAGIC: "labels"}


def _read_bytes(path: Path) -> bytes:
    """The file's content, gunzipped when it is gzip (by its magic bytes, not its name)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"IDX file {path} does not exist") from None
    except IsADirectoryError:
        raise DataError(f"IDX file {path} is a directory") from None
    except OSError as exc:
        raise DataError(f"IDX file {path} cannot be read: {exc}") from None
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except EOFError:
        raise DataError(
            f"IDX file {path} is a truncated gzip file (it ends before the compressed stream "
            "does); download or reinstall it"
        ) from None
    except (gzip.BadGzipFile, zlib.error) as exc:
        raise DataError(f"IDX file {path} is not a valid gzip file: {exc}") from None


def read_idx(path: str | os.PathLike, *, magic: int) -> np.ndarray:
    """The uint8 array held by one IDX file, checked against its header.

    Args:
        path: a ``.gz`` or plain IDX file.
        magic: the expected magic number, :data:`IMAGES_MAGIC` or :data:`LABELS_MAGIC`.

    Returns:
        uint8 ``(N, H, W)`` for images, ``(N,)`` for labels (read-only views of the bytes).

    Raises:
        DataError: naming the file, when it is missing, a truncated or broken gzip, has
            another magic number, or holds more or fewer bytes than its header says.
    """
    if magic not in _DIMENSIONS:
        raise ValueError(f"magic must be {IMAGES_MAGIC} or {LABELS_MAGIC}, got {magic}")
    path = Path(path)
    data = _read_bytes(path)
    what = _WHAT[magic]
    if len(data) < 4:
        raise DataError(f"IDX file {path}: {len(data)} bytes, too short for a header")
    (found,) = struct.unpack(">I", data[:4])
    if found != magic:
        raise DataError(
            f"IDX file {path}: magic number {found}, expected {magic} ({what}); "
            f"is it the {'labels' if magic == IMAGES_MAGIC else 'images'} file?"
        )
    ndim = _DIMENSIONS[magic]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"IDX file {path}: {len(data)} bytes, too short for a {ndim}-d header")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = int(np.prod(shape, dtype=np.int64))
    if len(data) - header != expected:
        raise DataError(
            f"IDX file {path}: header says {' x '.join(map(str, shape))} = {expected} bytes of "
            f"{what}, but {len(data) - header} follow"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def read_idx_header(path: str | os.PathLike, *, magic: int) -> tuple[int, ...]:
    """The shape an IDX file's header declares, reading no more than the header.

    Args:
        path: a ``.gz`` or plain IDX file.
        magic: the expected magic number.

    Returns:
        The declared shape, e.g. ``(60000, 28, 28)``. The data length is not checked here
        (:func:`read_idx` checks it); a missing or broken file is a DataError naming it.
    """
    path = Path(path)
    ndim = _DIMENSIONS[magic]
    size = 4 + 4 * ndim
    try:
        with open(path, "rb") as handle:
            gzipped = handle.read(2) == b"\x1f\x8b"
        opener = gzip.open if gzipped else open
        with opener(path, "rb") as handle:
            head = handle.read(size)
    except FileNotFoundError:
        raise DataError(f"IDX file {path} does not exist") from None
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"IDX file {path} cannot be read: {exc}") from None
    if len(head) < size or struct.unpack(">I", head[:4])[0] != magic:
        raise DataError(f"IDX file {path}: not an IDX {_WHAT[magic]} file (magic {magic})")
    return tuple(struct.unpack(f">{ndim}I", head[4:size]))


def read_idx_pair(
    images_path: str | os.PathLike, labels_path: str | os.PathLike
) -> tuple[np.ndarray, np.ndarray]:
    """Images and their labels, checked to be equally many.

    Args:
        images_path: the images IDX file (magic 2051).
        labels_path: the labels IDX file (magic 2049).

    Returns:
        uint8 images ``(N, H, W)`` and uint8 labels ``(N,)``.
    """
    images = read_idx(images_path, magic=IMAGES_MAGIC)
    labels = read_idx(labels_path, magic=LABELS_MAGIC)
    if len(images) != len(labels):
        raise DataError(
            f"IDX files {images_path} and {labels_path}: {len(images)} images but "
            f"{len(labels)} labels"
        )
    return images, labels


def write_idx(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write a uint8 array as an IDX file (gzip when the name ends in ``.gz``).

    Args:
        path: the file to write.
        array: uint8 ``(N, H, W)`` images or ``(N,)`` labels.

    Returns:
        The path written. Used by the tests and to make small fixtures.
    """
    array = np.ascontiguousarray(array, dtype=np.uint8)
    magic = {3: IMAGES_MAGIC, 1: LABELS_MAGIC}.get(array.ndim)
    if magic is None:
        raise ValueError(f"IDX: expected a 1-d or 3-d array, got shape {array.shape}")
    payload = struct.pack(f">I{array.ndim}I", magic, *array.shape) + array.tobytes()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(payload) if path.suffix == ".gz" else payload)
    return path
