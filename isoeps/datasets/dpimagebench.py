"""DPImageBench ``gen.npz``: read it to evaluate DPImageBench outputs, write it to export.

DPImageBench methods save ``np.savez(path, x=..., y=...)`` with ``x`` float32 ``(N, C, H, W)``
in [0, 1] and ``y`` integer labels. isoeps adds a ``captions`` array on export (DPImageBench
ignores extra keys). Grayscale (C = 1) files are read as three equal channels.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from isoeps.datasets.base import LUMA_601, ImageSplit
from isoeps.datasets.source import DatasetSource, SourceConfig, take_subset
from isoeps.errors import DataError
from isoeps.ops.images import DEFAULT_RESIZE, chw_to_pil, pil_to_chw, resize_pil, unit_to_uint8

#: DPImageBench's 3-to-1 channel weights (ITU-R 601's), as its ``evaluator.py`` applies them to
#: channels (2, 1, 0) of a colour gen.npz when the sensitive data has one channel.
GRAY_WEIGHTS: tuple[float, float, float] = LUMA_601


def dpimagebench_gray(unit: np.ndarray) -> np.ndarray:
    """Colour images in [0, 1] as DPImageBench turns them gray for a one-channel sensitive set.

    Args:
        unit: float32 ``(N, 3, H, W)`` in [0, 1].

    Returns:
        float32 ``(N, 1, H, W)``: ``0.299 c2 + 0.587 c1 + 0.114 c0`` (its channel order, kept),
        or the first channel itself when the three are equal (the gray data isoeps stores).
    """
    if np.array_equal(unit[:, 0], unit[:, 1]) and np.array_equal(unit[:, 0], unit[:, 2]):
        return np.ascontiguousarray(unit[:, :1])
    w0, w1, w2 = GRAY_WEIGHTS
    return w0 * unit[:, 2:3] + w1 * unit[:, 1:2] + w2 * unit[:, 0:1]


#: How float pixels become uint8: isoeps rounds; DPImageBench's ``ToPILImage`` truncates.
QUANTISE_MODES: tuple[str, ...] = ("round", "truncate")


def read_dpimagebench_npz(
    path: str | os.PathLike, *, quantise: str = "round"
) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    """``(images uint8 (N, 3, H, W), labels int64 (N,), captions or None)`` from a gen.npz.

    Args:
        path: the file. ``x`` may be float32 or float64 (DPImageBench's PE writes float64).
        quantise: ``"round"`` (isoeps's convention) or ``"truncate"``, as DPImageBench's
            evaluator does through ``ToPILImage`` (``x * 255`` cast to uint8).

    Raises :class:`DataError` naming the file and the problem: a missing ``x``, a wrong
    shape or dtype, values outside [0, 1] or non-finite, or ``y``/``captions`` of wrong length.
    """
    if quantise not in QUANTISE_MODES:
        raise ValueError(f"quantise must be one of {QUANTISE_MODES}, got {quantise!r}")
    path = Path(path)
    try:
        data = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(f"DPImageBench file {path} does not exist") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{path} is not a readable .npz file: {exc}") from None
    with data:
        if "x" not in data.files:
            raise DataError(f"{path}: no 'x' array (found {', '.join(data.files) or 'nothing'})")
        x = data["x"]
        y = data["y"] if "y" in data.files else None
        captions = data["captions"] if "captions" in data.files else None
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise DataError(f"{path}: x must be (N, C, H, W) with C in (1, 3), got shape {x.shape}")
    if x.dtype not in (np.float32, np.float64):
        raise DataError(f"{path}: x must be float32 (or float64) in [0, 1], got dtype {x.dtype}")
    if x.size and (not np.isfinite(x).all() or x.min() < 0.0 or x.max() > 1.0):
        raise DataError(
            f"{path}: x must hold finite values in [0, 1], got range "
            f"[{np.nanmin(x):.4g}, {np.nanmax(x):.4g}]"
        )
    n = x.shape[0]
    labels = _labels(y, n=n, path=path)
    caption_list = None
    if captions is not None:
        if captions.shape != (n,) or captions.dtype.kind not in "US":
            raise DataError(
                f"{path}: captions must be {n} strings, got {captions.dtype} {captions.shape}"
            )
        caption_list = [str(c) for c in captions]
    if quantise == "round":
        images = unit_to_uint8(x)
    else:  # ToPILImage: pic.mul(255).byte() on the float tensor
        images = (x.astype(np.float32) * np.float32(255.0)).astype(np.uint8)
    if images.shape[1] == 1:
        images = np.repeat(images, 3, axis=1)
    return images, labels, caption_list


def _labels(y: np.ndarray | None, *, n: int, path: Path) -> np.ndarray:
    """``y`` as int64 ``(n,)`` (an ``(n, 1)`` column is flattened); zeros when absent."""
    if y is None:
        return np.zeros(n, dtype=np.int64)
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.reshape(-1)
    if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{path}: y must be {n} integer labels, got {y.dtype} {y.shape}")
    return y.astype(np.int64)


def write_dpimagebench_npz(
    path: str | os.PathLike,
    *,
    images: np.ndarray,
    labels: np.ndarray | None = None,
    captions: list[str] | None = None,
    channels: int = 3,
    padding: int = 0,
) -> None:
    """Write uint8 ``(N, 3, H, W)`` images as DPImageBench's gen.npz (atomically).

    Args:
        path: the file to write.
        images: uint8 NCHW samples as isoeps stores them.
        labels: each sample's class (``y``); zeros when None (an unconditional source).
        captions: each sample's caption, stored as an extra ``captions`` array.
        channels: 1 for a grayscale source: ``x`` gets one channel, converted as
            DPImageBench's evaluator converts colour samples (:func:`dpimagebench_gray`), so
            that the file evaluates there as isoeps's own ``dpimagebench-*`` metrics do here.
        padding: pixels the source padded on each side; cropped off, so that ``x`` has the
            sensitive data's own resolution, as DPImageBench's evaluator expects.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be uint8 (N, 3, H, W), got {images.dtype} {images.shape}")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    if padding < 0 or 2 * padding >= min(images.shape[-2:]):
        raise ValueError(f"padding {padding} does not fit images of {images.shape[-2:]}")
    n = images.shape[0]
    y = np.zeros(n, dtype=np.int64) if labels is None else np.asarray(labels)
    if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be {n} integers, got {y.dtype} {y.shape}")
    if padding:
        images = images[:, :, padding:-padding, padding:-padding]
    x = images.astype(np.float32) / np.float32(255.0)
    if channels == 1:
        x = dpimagebench_gray(x)
    arrays: dict[str, Any] = {"x": np.ascontiguousarray(x), "y": y.astype(np.int64)}
    if captions is not None:
        if len(captions) != n:
            raise ValueError(f"captions: expected {n}, got {len(captions)}")
        arrays["captions"] = np.array([str(c) for c in captions], dtype=np.str_)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class DPImageBenchConfig(SourceConfig):
    root: str | None = Field(None, description="a gen.npz file, or a folder holding gen.npz")
    resize: str = Field(DEFAULT_RESIZE, description="resize policy when the file's size differs")


class DPImageBenchDataset(DatasetSource):
    """Images from a DPImageBench ``gen.npz`` (to evaluate its outputs with isoeps metrics).

    The whole file is the requested split. Captions come from the file's ``captions`` array
    when present, else ``"class <y>"``; the label is kept as attribute ``label``.
    """

    name: ClassVar[str] = "dpimagebench"
    description: ClassVar[str] = "DPImageBench gen.npz samples (x float32 NCHW in [0,1], y)"
    Config: ClassVar[type[DPImageBenchConfig]] = DPImageBenchConfig

    def _path(self) -> Path:
        if not self.config.root:
            raise DataError("dpimagebench: set root to a gen.npz file (or a folder holding one)")
        path = Path(self.config.root).expanduser()
        return path / "gen.npz" if path.is_dir() else path

    def available(self, split: str) -> int:
        self.check_split(split)
        return len(read_dpimagebench_npz(self._path())[0])

    def load(
        self, split: str, *, resolution: int = 32, n: int | None = None, seed: int = 0
    ) -> ImageSplit:
        """One split from a DPImageBench ``.npz``: ``n`` images chosen by ``seed``, resized to R.

        Captions are the file's, else ``class <label>``.

        Args:
            split: one of this source's splits.
            resolution: side length R of the square images, in pixels; >= 4.
            n: how many images; None for all in the file.
            seed: the seed that picks the images.

        Returns:
            The split, with a ``label`` attribute.

        Raises:
            ConfigError: ``split`` or ``resolution`` is not supported.
            DataError: the file cannot be read, or ``n`` exceeds it.
        """
        self.check_split(split)
        self.check_resolution(resolution)
        path = self._path()
        images, labels, captions = read_dpimagebench_npz(path)
        chosen = take_subset(len(images), n=n, seed=seed, salt=f"dpimagebench/{split}")
        images, labels = images[chosen], labels[chosen]
        if images.shape[-1] != resolution or images.shape[-2] != resolution:
            images = (
                np.stack(
                    [
                        pil_to_chw(
                            resize_pil(
                                chw_to_pil(im), resolution=resolution, mode=self.config.resize
                            )
                        )
                        for im in images
                    ]
                )
                if len(images)
                else np.zeros((0, 3, resolution, resolution), np.uint8)
            )
        texts = [
            [captions[i]] if captions else [f"class {labels[k]}"] for k, i in enumerate(chosen)
        ]
        classes = sorted(set(labels.tolist()))
        return ImageSplit(
            dataset=self.name,
            split=split,
            ids=[f"dpimagebench:{path.stem}:{i}" for i in chosen],
            images=images,
            captions=texts,
            attributes={"label": np.searchsorted(classes, labels).astype(np.int64)},
            attribute_schema={"label": [str(c) for c in classes]},
            info={
                "source": "dpimagebench",
                "path": str(path),
                "resolution": resolution,
                "resize_mode": self.config.resize,
            },
        )
