"""Image sets for ``isoeps metrics compute``: a folder, a DPImageBench ``.npz`` or a dataset.

``SRC`` is read as, in order: an existing folder of images (png/jpg/jpeg/bmp/webp, sorted by
name); an existing ``.npz`` file (``x`` float32 NCHW in [0, 1], ``y``, optional ``captions``);
else a dataset name ``NAME[:split]`` for ``isoeps.datasets.load_split``. Images of mixed sizes
in a folder are resized to the most common size (antialiased bicubic), with a warning and a
record in ``ImageSplit.info["resized"]``; never silently.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from isoeps.datasets.base import ImageSplit
from isoeps.errors import DataError
from isoeps.log import get_logger
from isoeps.metrics.preprocess import match_resolution

log = get_logger(__name__)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def read_folder(folder: Path, *, role: str) -> ImageSplit:
    """The images of a folder (not recursive), resized to their most common size if they differ.

    Captions are empty, ids the file names.

    Args:
        folder: the folder.
        role: the split name given to the result.

    Returns:
        The split.

    Raises:
        DataError: no images, an unreadable image, or a non-square (most common) size.
    """
    from PIL import Image

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
    arrays = []
    for path in files:
        try:
            with Image.open(path) as image:
                arrays.append(np.asarray(image.convert("RGB")).transpose(2, 0, 1))
        except OSError as exc:
            raise DataError(f"{path}: not a readable image ({exc})") from None
    sizes = Counter(a.shape[1:] for a in arrays)
    info: dict[str, object] = {"source": "folder", "root": str(folder)}
    if len(sizes) > 1:
        target = sizes.most_common(1)[0][0]
        if target[0] != target[1]:
            raise DataError(f"{folder}: the most common image size {target} is not square")
        odd = [files[i].name for i, a in enumerate(arrays) if a.shape[1:] != target]
        log.warning(
            "%s: %d images are not %s; resizing them (torch-bicubic-aa)", folder, len(odd), target
        )
        arrays = [match_resolution(a[None], size=target[0], what=str(folder))[0][0] for a in arrays]
        info["resized"] = {
            "count": len(odd),
            "to": list(target),
            "mode": "torch-bicubic-aa",
            "first": odd[:5],
        }
    elif next(iter(sizes))[0] != next(iter(sizes))[1]:
        raise DataError(f"{folder}: images must be square, got {next(iter(sizes))}")
    return ImageSplit(
        dataset=f"folder:{folder.name}",
        split=role,
        ids=[p.name for p in files],
        images=np.stack(arrays).astype(np.uint8),
        captions=[[""] for _ in files],
        info=info,
    )


def read_npz(path: Path, *, role: str, quantise: str = "round") -> ImageSplit:
    """The images (and labels and captions, if any) of a DPImageBench-style ``.npz``.

    Args:
        path: the file.
        role: the split name given to the result.
        quantise: how float pixels become uint8: ``"round"`` or ``"truncate"``.

    Returns:
        The split, with a ``label`` attribute.

    Raises:
        DataError: no images, non-square images, or a file that cannot be read.
    """
    from isoeps.datasets import read_dpimagebench_npz

    images, labels, captions = read_dpimagebench_npz(path, quantise=quantise)
    if images.shape[0] == 0:
        raise DataError(f"{path}: no images (x is empty)")
    if images.shape[-1] != images.shape[-2]:
        raise DataError(f"{path}: images must be square, got {images.shape[-2:]}")
    return ImageSplit(
        dataset=f"npz:{path.name}",
        split=role,
        ids=[f"{path.stem}-{i}" for i in range(images.shape[0])],
        images=images,
        captions=[[c] for c in captions] if captions else [[""] for _ in range(images.shape[0])],
        attributes={"label": labels},
        attribute_schema={"label": [str(v) for v in range(int(labels.max()) + 1)]},
        info={"source": "npz", "path": str(path), "quantise": quantise},
    )


def parse_dataset(src: str, *, default_split: str) -> tuple[str, str]:
    """Split ``NAME[:split]`` into the name and the split (``default_split`` when absent).

    Args:
        src: ``NAME`` or ``NAME:split``.
        default_split: the split when ``src`` names none.

    Returns:
        ``(name, split)``.
    """
    name, _, split = src.partition(":")
    return name, split or default_split


def load_source(
    src: str,
    *,
    role: str,
    resolution: int = 32,
    n: int | None = None,
    seed: int = 0,
    quantise: str = "round",
) -> ImageSplit:
    """An ImageSplit from ``SRC`` (folder, .npz or ``NAME[:split]``); ``role`` names it in errors.

    ``quantise`` says how a float .npz becomes uint8: ``"round"`` or ``"truncate"``.

    Args:
        src: a folder, a ``.npz`` file, or ``NAME[:split]`` of a registered dataset (split
            ``reference`` by default).
        role: names the source in errors (as the ``--<role>`` option) and is the split name
            of a folder or file.
        resolution: the resolution of a registered dataset; a folder or file keeps its own.
        n: the most images to keep; None for all.
        seed: the seed of a registered dataset's choice.
        quantise: see above.

    Returns:
        The split.

    Raises:
        DataError: ``src`` is none of these, or the data cannot be read.
    """
    path = Path(src).expanduser()
    if path.is_dir():
        split = read_folder(path, role=role)
    elif path.suffix == ".npz":
        if not path.is_file():
            raise DataError(f"--{role}: {path} does not exist")
        split = read_npz(path, role=role, quantise=quantise)
    else:
        from isoeps.datasets import load_split
        from isoeps.errors import UnknownNameError

        name, split_name = parse_dataset(src, default_split="reference")
        try:
            return load_split(name, split_name, resolution=resolution, n=n, seed=seed)
        except UnknownNameError as exc:
            raise DataError(
                f"--{role} {src!r} is not a folder, not a .npz file, and {exc}"
            ) from None
    if n is not None and n < len(split):
        split = split.take(np.arange(n))
    return split
