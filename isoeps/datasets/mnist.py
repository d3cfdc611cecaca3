"""fashion-mnist and mnist: the official IDX files, split as DPImageBench splits them.

Files: ``{train,t10k}-{images-idx3,labels-idx1}-ubyte`` (``.gz`` or plain) in the first of:
``root`` (or, without it, ``$FASHION_MNIST_ROOT`` / ``$MNIST_ROOT``), that folder's
torchvision layout ``<root>/FashionMNIST/raw/`` (``MNIST/raw/``), and, when neither is given,
the Debian package's ``/usr/share/datasets/fashion-mnist/`` (``apt-get install
dataset-fashion-mnist``; Debian ships no MNIST). A given root is never silently replaced by
the system copy.

Splits (DPImageBench's, ``docs/datasets.md``):

- ``private``: the 55,000 train records of ``torch.manual_seed(0);
  random_split(range(60000), [55000, 5000])``, over the train file's own order;
- ``validation``: the other 5,000 (11/12 and 1/12 of the train file in general);
- ``reference``: the 10,000 test records (DPImageBench's test set);
- ``eval``: a fixed seeded half of the test records, which ``reference`` also holds: isoeps's
  evaluators (tiny CLIP, the attribute classifier) train on it and must never see a private
  or validation record, and the test file is the only other data. The two splits declare the
  sharing (``ImageSplit.shares_records_with``); the overlap check allows nothing else.
- ``public``: none. Public data is out of domain and comes from another source of the suite.

Records keep their class as attribute ``label``; the caption is ``caption_template`` with the
class name. Images are gray, stored as three equal channels with ``info["channels"] = 1``.
At resolution ``pad_to`` (default 32) the native 28x28 are zero-padded (black, the
background) rather than resized, and ``info["padding"]`` says by how much.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import Field, field_validator

from isoeps.datasets.base import ImageSplit, gray_to_rgb
from isoeps.datasets.idx import IMAGES_MAGIC, read_idx_header, read_idx_pair
from isoeps.datasets.source import DatasetSource, SourceConfig, take_subset
from isoeps.errors import ConfigError, DataError
from isoeps.ops.images import DEFAULT_RESIZE, resize_policy

FASHION_CLASSES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
DIGIT_CLASSES: tuple[str, ...] = tuple(str(d) for d in range(10))
FILES: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
#: DPImageBench keeps 55,000 of the 60,000 train records private: 11/12 of the train file.
PRIVATE_SHARE = (11, 12)
#: ``torch.manual_seed`` before DPImageBench's ``random_split``.
SPLIT_SEED = 0
#: Fixes which half of the test records is ``eval`` (not the run's seed: the pool is stable).
EVAL_POOL_SEED = 0
PUBLIC_NOTE = (
    "its public data is out of domain and comes from another source of the suite "
    "(dataset.public, e.g. skimage-photos)"
)


class MnistFamilyConfig(SourceConfig):
    root: str | None = Field(
        None, description="folder with the four IDX files, or a torchvision root"
    )
    caption_template: str = Field(
        "a photo of a {label}", description="caption of a record; {label} is its class name"
    )
    pad_to: int | None = Field(
        32,
        description="the resolution reached by zero-padding the native images (even margin); "
        "other resolutions are resized; null: always resize",
    )
    resize: str = Field(DEFAULT_RESIZE, description="resize policy for other resolutions")

    @field_validator("caption_template")
    @classmethod
    def _template(cls, template: str) -> str:
        try:
            template.format(label="x")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"caption_template {template!r} must use only the field {{label}}: {exc!r}"
            ) from None
        return template

    @field_validator("pad_to")
    @classmethod
    def _pad_to(cls, pad_to: int | None) -> int | None:
        if pad_to is not None and pad_to < 4:
            raise ValueError(f"pad_to must be >= 4 or null, got {pad_to}")
        return pad_to

    @field_validator("resize")
    @classmethod
    def _resize(cls, mode: str) -> str:
        resize_policy(mode)
        return mode


class MnistConfig(MnistFamilyConfig):
    # MNIST digits are handwriting scans, not photographs.
    caption_template: str = Field(
        "a handwritten digit {label}", description="caption of a record; {label} is the digit"
    )


@dataclass(frozen=True)
class _Files:
    folder: Path
    paths: dict[str, tuple[Path, Path]]  # part -> (images, labels)


@functools.lru_cache(maxsize=4)
def _read_part(images: str, labels: str, stamp: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """One part's arrays, decoded once per process; ``stamp`` (mtime, size) keys a change."""
    del stamp
    return read_idx_pair(images, labels)


@functools.lru_cache(maxsize=4)
def dpimagebench_split(count: int) -> tuple[np.ndarray, np.ndarray]:
    """The train indices DPImageBench keeps private and for validation, each sorted.

    Args:
        count: records in the train file (60,000 for the official files).

    Returns:
        ``(private, validation)`` int64 indices: the two subsets of
        ``torch.manual_seed(0); random_split(range(count), [k, count - k])`` with
        ``k = count * 11 // 12``. A private generator seeded 0 draws the same permutation as
        the global one, without changing the caller's torch random state.
    """
    import torch
    from torch.utils.data import random_split

    private_count = count * PRIVATE_SHARE[0] // PRIVATE_SHARE[1]
    generator = torch.Generator().manual_seed(SPLIT_SEED)
    private, validation = random_split(
        range(count), [private_count, count - private_count], generator=generator
    )
    return (
        np.sort(np.asarray(private.indices, dtype=np.int64)),
        np.sort(np.asarray(validation.indices, dtype=np.int64)),
    )


def eval_pool(count: int, *, salt: str) -> np.ndarray:
    """The fixed half of the test records that forms the eval split.

    Args:
        count: records in the test file.
        salt: names the dataset, so that each dataset's half is its own.

    Returns:
        ``count // 2`` sorted int64 indices, the same in every run (a constant seed).
    """
    return np.asarray(
        take_subset(count, n=count // 2, seed=EVAL_POOL_SEED, salt=salt), dtype=np.int64
    )


def pad_images(gray: np.ndarray, *, padding: int) -> np.ndarray:
    """uint8 ``(N, H, W)`` with a black border of ``padding`` pixels on every side.

    Args:
        gray: uint8 gray images.
        padding: border width in pixels.

    Returns:
        uint8 ``(N, H + 2 p, W + 2 p)``; cropping ``p`` pixels off each side gives ``gray`` back.
    """
    n, h, w = gray.shape
    out = np.zeros((n, h + 2 * padding, w + 2 * padding), dtype=np.uint8)
    out[:, padding : padding + h, padding : padding + w] = gray
    return out


def resize_gray(gray: np.ndarray, *, resolution: int, mode: str) -> np.ndarray:
    """uint8 ``(N, H, W)`` square gray images resized with the named policy's filter.

    Args:
        gray: uint8 gray images.
        resolution: the output side.
        mode: a resize policy name (:data:`isoeps.ops.images.RESIZE_POLICIES`).

    Returns:
        uint8 ``(N, resolution, resolution)``.
    """
    from PIL import Image

    resample = resize_policy(mode).resample
    out = np.empty((len(gray), resolution, resolution), dtype=np.uint8)
    for i, image in enumerate(gray):
        resized = Image.fromarray(image, mode="L").resize((resolution, resolution), resample)
        out[i] = np.asarray(resized)
    return out


class MnistFamily(DatasetSource):
    """Shared loader of the IDX datasets; subclasses name the classes and where files live."""

    splits: ClassVar[tuple[str, ...]] = ("private", "validation", "reference", "eval")
    missing_split_notes: ClassVar[dict[str, str]] = {"public": PUBLIC_NOTE}
    Config: ClassVar[type[MnistFamilyConfig]] = MnistFamilyConfig
    classes: ClassVar[tuple[str, ...]] = ()
    env_var: ClassVar[str] = ""
    torchvision_dir: ClassVar[str] = ""
    system_dirs: ClassVar[tuple[str, ...]] = ()
    install_hint: ClassVar[str] = ""

    def candidate_folders(self) -> list[Path]:
        """Where the files are looked for.

        Returns:
            Folders in search order: the given root (``root``, else the env var) and its
            torchvision layout; without either, the system folders.
        """
        given = self.config.root or os.environ.get(self.env_var)
        if given:
            base = Path(given).expanduser()
            return [base, base / self.torchvision_dir / "raw"]
        return [Path(p) for p in self.system_dirs]

    def locate(self) -> _Files:
        """The four files, from the first candidate folder that holds them.

        Returns:
            The folder and, per part (``train``, ``test``), the images and labels paths.

        Raises:
            DataError: listing every folder looked in when none has them, or naming the
                missing files of a folder that has only some.
        """
        looked = []
        for folder in self.candidate_folders():
            paths = {part: (_find(folder, a), _find(folder, b)) for part, (a, b) in FILES.items()}
            missing = [
                stem
                for part, stems in FILES.items()
                for stem, path in zip(stems, paths[part])
                if path is None
            ]
            if not missing:
                return _Files(folder, paths)  # type: ignore[arg-type]
            if len(missing) < 4:
                # Some files but not all: a broken copy, which a fallback would only hide.
                raise DataError(
                    f"{self.name}: {folder} holds some IDX files but lacks {', '.join(missing)} "
                    "(.gz or plain)"
                )
            looked.append(str(folder))
        source = (
            f"root={self.config.root}"
            if self.config.root
            else f"${self.env_var}={os.environ[self.env_var]}"
            if os.environ.get(self.env_var)
            else f"no root given and ${self.env_var} unset"
        )
        places = "; ".join(looked) or "no folder (no system-wide copy is known)"
        raise DataError(
            f"{self.name}: the IDX files ({', '.join(s for v in FILES.values() for s in v)}, "
            f".gz or plain) are not found ({source}); looked in: {places}. "
            f"Pass root=/path (--root) or set ${self.env_var}{self.install_hint}"
        )

    def _part(self, part: str) -> tuple[np.ndarray, np.ndarray, tuple[Path, Path]]:
        """Images ``(N, H, W)`` and labels of ``train`` or ``test``, checked."""
        images_path, labels_path = self.locate().paths[part]
        stamp = tuple(v for p in (images_path, labels_path) for v in _stamp(p))
        images, labels = _read_part(str(images_path), str(labels_path), stamp)
        if images.shape[1] != images.shape[2]:
            raise DataError(f"{images_path}: images must be square, got {images.shape[1:]}")
        if len(labels) and int(labels.max()) >= len(self.classes):
            bad = int(np.argmax(labels >= len(self.classes)))
            raise DataError(
                f"{labels_path}: label {int(labels[bad])} at record {bad} is not one of the "
                f"{len(self.classes)} classes (0..{len(self.classes) - 1})"
            )
        return images, labels, (images_path, labels_path)

    def _pool(self, split: str, count: int) -> np.ndarray:
        """The split's record indices into its part (``count`` records), sorted."""
        if split in ("private", "validation"):
            private, validation = dpimagebench_split(count)
            return private if split == "private" else validation
        if split == "eval":
            return eval_pool(count, salt=f"{self.name}/eval-pool")
        return np.arange(count, dtype=np.int64)

    def available(self, split: str) -> int:
        self.check_split(split)
        part = "test" if split in ("reference", "eval") else "train"
        images_path, _ = self.locate().paths[part]
        count = read_idx_header(images_path, magic=IMAGES_MAGIC)[0]
        return len(self._pool(split, count))

    def load(
        self, split: str, *, resolution: int = 32, n: int | None = None, seed: int = 0
    ) -> ImageSplit:
        """One split of (Fashion-)MNIST: ``n`` digits of its part chosen by ``seed``.

        ``reference`` and ``eval`` come from the test part, the other splits from the train part.

        Args:
            split: one of this source's splits.
            resolution: side length R of the square images, in pixels; >= 4.
            n: how many images; None for the split's whole pool.
            seed: the seed that picks the images.

        Returns:
            The split: grey images as uint8 ``(n, 3, R, R)``, a caption from the class name and
            a ``label`` attribute.

        Raises:
            ConfigError: ``split`` or ``resolution`` is not supported.
            DataError: the files cannot be read, or ``n`` exceeds the pool.
        """
        self.check_split(split)
        self.check_resolution(resolution)
        part = "test" if split in ("reference", "eval") else "train"
        images, labels, files = self._part(part)
        pool = self._pool(split, len(images))
        try:
            chosen = pool[take_subset(len(pool), n=n, seed=seed, salt=f"{self.name}/{split}")]
        except DataError as exc:
            raise DataError(f"{self.name}/{split}: {exc}") from None
        pixels, geometry = self._geometry(images[chosen], resolution=resolution)
        names = [self.classes[y] for y in labels[chosen]]
        return ImageSplit(
            dataset=self.name,
            split=split,
            ids=[f"{part}-{i:05d}" for i in chosen],
            images=gray_to_rgb(pixels),
            captions=[[self.config.caption_template.format(label=name)] for name in names],
            attributes={"label": labels[chosen].astype(np.int64)},
            attribute_schema={"label": list(self.classes)},
            info={
                "source": self.name,
                "root": str(files[0].parent),
                "files": [str(p) for p in files],
                "part": part,
                "seed": seed,
                "resolution": resolution,
                "channels": 1,
                **geometry,
                **_split_rule(split),
            },
            shares_records_with=_SHARED.get(split, ()),
        )

    def _geometry(self, gray: np.ndarray, *, resolution: int) -> tuple[np.ndarray, dict]:
        """Native images at ``resolution``: as they are, zero-padded at ``pad_to``, or resized."""
        native = gray.shape[-1]
        info: dict[str, Any] = {"native_resolution": native, "padding": 0}
        if resolution == native:
            return gray, {**info, "resize_mode": "native"}
        pad_to = self.config.pad_to
        if resolution == pad_to:
            margin = resolution - native
            if margin < 0 or margin % 2:
                raise ConfigError(
                    f"{self.name}: pad_to={pad_to} cannot be reached by an even zero border "
                    f"around the native {native}x{native}; set pad_to to null to resize instead"
                )
            padding = margin // 2
            return pad_images(gray, padding=padding), {
                **info,
                "padding": padding,
                "resize_mode": f"zero-pad-{padding}",
            }
        resized = resize_gray(gray, resolution=resolution, mode=self.config.resize)
        return resized, {**info, "resize_mode": self.config.resize}

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "env_var": self.env_var,
            "looked_in": [str(p) for p in self.candidate_folders()],
            "classes": list(self.classes),
            "caption_template": self.config.caption_template,
            "pad_to": self.config.pad_to,
            "split_rules": {s: _split_rule(s)["split_rule"] for s in self.splits},
        }


_SHARED: dict[str, tuple[str, ...]] = {"reference": ("eval",), "eval": ("reference",)}
_RULES = {
    "private": "train records in the first subset of torch.manual_seed(0); "
    "random_split(range(N), [11N/12, N/12]) (DPImageBench's 55,000 of 60,000)",
    "validation": "the other train records of that random_split (DPImageBench's 5,000)",
    "reference": "all test records (DPImageBench's test set)",
    "eval": "a fixed seeded half of the test records (also in reference)",
}


def _split_rule(split: str) -> dict[str, str]:
    return {"split_rule": _RULES[split]}


def _find(folder: Path, stem: str) -> Path | None:
    """``stem`` (plain, faster to read) or ``stem.gz`` in ``folder``, if either exists."""
    for name in (stem, f"{stem}.gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def _stamp(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size


class FashionMNIST(MnistFamily):
    """Zalando's Fashion-MNIST: 60,000 + 10,000 gray 28x28 clothes in 10 classes (MIT)."""

    name: ClassVar[str] = "fashion-mnist"
    description: ClassVar[str] = (
        "Fashion-MNIST IDX files (root, $FASHION_MNIST_ROOT or /usr/share/datasets/fashion-mnist)"
    )
    classes: ClassVar[tuple[str, ...]] = FASHION_CLASSES
    env_var: ClassVar[str] = "FASHION_MNIST_ROOT"
    torchvision_dir: ClassVar[str] = "FashionMNIST"
    system_dirs: ClassVar[tuple[str, ...]] = ("/usr/share/datasets/fashion-mnist",)
    install_hint: ClassVar[str] = (
        "; on Debian, as root: apt-get update && apt-get install -y dataset-fashion-mnist"
    )


class MNIST(MnistFamily):
    """LeCun's MNIST: 60,000 + 10,000 gray 28x28 handwritten digits."""

    name: ClassVar[str] = "mnist"
    description: ClassVar[str] = "MNIST IDX files (root or $MNIST_ROOT)"
    Config: ClassVar[type[MnistFamilyConfig]] = MnistConfig
    classes: ClassVar[tuple[str, ...]] = DIGIT_CLASSES
    env_var: ClassVar[str] = "MNIST_ROOT"
    torchvision_dir: ClassVar[str] = "MNIST"
