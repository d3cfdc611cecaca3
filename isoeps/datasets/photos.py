"""skimage-photos: seeded random crops of the photographs that ship inside scikit-image.

Out-of-domain public data, in the role ImageNet plays for DPImageBench's Fashion-MNIST: real
photographs, none of them clothes or digits, that install with a wheel (no download). Only
files in the wheel's ``skimage/data/`` whose docstrings state CC0, public domain or no known
copyright restrictions are used (:data:`PHOTOS`); they are read with PIL straight from the
package, so nothing can trigger scikit-image's downloader.

Item ``i`` of a run is one square crop, drawn from ``SeedSequence([seed, i])`` alone (a photo,
a side between ``min_crop`` and ``max_crop`` of its shorter side, a position, a mirror), so
asking for more items never changes the earlier ones. The only split is ``public``.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

import numpy as np
from pydantic import Field, field_validator, model_validator

from isoeps.datasets.base import ImageSplit, luma_gray
from isoeps.datasets.source import DatasetSource, SourceConfig
from isoeps.errors import ConfigError, DataError
from isoeps.ops.images import DEFAULT_RESIZE, resize_policy

#: name -> file in ``skimage/data/`` (and the licence its scikit-image docstring states).
PHOTOS: dict[str, str] = {
    "astronaut": "astronaut.png",  # public domain (NASA)
    "brick": "brick.png",  # CC0 (CC0Textures)
    "camera": "camera.png",  # CC0 (Lav Varshney)
    "cell": "cell.png",  # CC0
    "chelsea": "chelsea.png",  # CC0 (Stefan van der Walt)
    "clock": "clock_motion.png",  # public domain (Stefan van der Walt)
    "coffee": "coffee.png",  # CC0 (Rachel Michetti)
    "coins": "coins.png",  # no known copyright restrictions
    "grass": "grass.png",  # CC0 (CC0Textures)
    "gravel": "gravel.png",  # CC0 (CC0Textures)
    "hubble_deep_field": "hubble_deep_field.jpg",  # public domain (NASA)
    "immunohistochemistry": "ihc.png",  # no known copyright restrictions
    "microaneurysms": "microaneurysms.png",  # CC0 (Andreas Maier)
    "retina": "retina.jpg",  # CC0
    "rocket": "rocket.jpg",  # public domain (SpaceX)
    "text": "text.png",  # public domain
}
#: PIL first box-reduces by an integer factor while the image stays >= 3x the target, then
#: resamples: PIL documents 3 as indistinguishable from a full resample, and it is ~3x faster.
REDUCING_GAP = 3.0
ONLY_PUBLIC = "skimage-photos holds only out-of-domain public data (split public)"


class PhotosConfig(SourceConfig):
    photos: list[str] | None = Field(None, description="photo names to crop from (default all)")
    size: int = Field(10000, ge=0, description="items when n is not given")
    min_crop: float = Field(0.2, gt=0.0, le=1.0, description="smallest crop side / short side")
    max_crop: float = Field(1.0, gt=0.0, le=1.0, description="largest crop side / short side")
    flip: bool = Field(True, description="mirror half of the crops left-right")
    grayscale: bool = Field(False, description="ITU-R 601 luma in three equal channels")
    caption: str = Field("a photo", description="every record's caption")
    resize: str = Field(DEFAULT_RESIZE, description="resize policy whose filter shrinks crops")

    @field_validator("photos")
    @classmethod
    def _known(cls, photos: list[str] | None) -> list[str] | None:
        if photos is not None:
            unknown = [p for p in photos if p not in PHOTOS]
            if unknown or not photos:
                raise ValueError(
                    f"photos: unknown or empty {unknown or photos}; known: {', '.join(PHOTOS)}"
                )
        return photos

    @field_validator("resize")
    @classmethod
    def _resize(cls, mode: str) -> str:
        resize_policy(mode)
        return mode

    @model_validator(mode="after")
    def _crop_range(self) -> PhotosConfig:
        if self.min_crop > self.max_crop:
            raise ValueError(f"min_crop {self.min_crop} must be <= max_crop {self.max_crop}")
        return self


@functools.cache
def load_photo(name: str) -> Any:
    """The named photograph as an RGB PIL image, read from the installed scikit-image.

    Args:
        name: a key of :data:`PHOTOS`.

    Returns:
        A loaded ``PIL.Image.Image`` in mode RGB (gray photos have three equal channels).
    """
    from importlib.resources import files

    from PIL import Image

    try:
        path = files("skimage") / "data" / PHOTOS[name]
    except ModuleNotFoundError:
        raise DataError(
            "skimage-photos: scikit-image is not installed (pip install 'scikit-image>=0.22')"
        ) from None
    try:
        with Image.open(str(path)) as image:
            return image.convert("RGB")
    except FileNotFoundError:
        raise DataError(
            f"skimage-photos: {path} is not in the installed scikit-image wheel"
        ) from None


def crop_params(
    rng: np.random.Generator, *, width: int, height: int, min_crop: float, max_crop: float
) -> tuple[int, int, int]:
    """A random square crop of a ``width`` x ``height`` image.

    Args:
        rng: the item's generator (two draws, after the photo's).
        width: the photo's width in pixels.
        height: the photo's height in pixels.
        min_crop: smallest side, as a fraction of the shorter side.
        max_crop: largest side, as a fraction of the shorter side.

    Returns:
        ``(left, top, side)`` in pixels, inside the image.
    """
    short = min(width, height)
    side = max(1, int(np.rint(short * rng.uniform(min_crop, max_crop))))
    left = int(rng.integers(0, width - side + 1))
    top = int(rng.integers(0, height - side + 1))
    return left, top, side


class SkimagePhotos(DatasetSource):
    """Random square crops of scikit-image's bundled public-domain photographs (public only)."""

    name: ClassVar[str] = "skimage-photos"
    description: ClassVar[str] = (
        "seeded crops of scikit-image's bundled public-domain photos (out-of-domain public data)"
    )
    Config: ClassVar[type[PhotosConfig]] = PhotosConfig
    splits: ClassVar[tuple[str, ...]] = ("public",)
    missing_split_notes: ClassVar[dict[str, str]] = {
        s: ONLY_PUBLIC for s in ("private", "reference", "eval", "validation")
    }

    def names(self) -> list[str]:
        """The photographs this configuration crops from.

        Returns:
            Names of :data:`PHOTOS`, in the config's order (default: all, in table order).
        """
        return list(self.config.photos or PHOTOS)

    def load(
        self, split: str, *, resolution: int = 32, n: int | None = None, seed: int = 0
    ) -> ImageSplit:
        """``n`` crops of the configured photographs, placed by ``seed``.

        Args:
            split: one of this source's splits.
            resolution: side length R of the square crops, in pixels; >= 4.
            n: how many crops; None for the config's ``size``.
            seed: the seed of the crops.

        Returns:
            The split.

        Raises:
            ConfigError: ``split`` or ``resolution`` is not supported, or ``n`` is negative.
        """
        self.check_split(split)
        self.check_resolution(resolution)
        count = self.config.size if n is None else n
        if count < 0:
            raise ConfigError(f"n must be >= 0, got {count}")
        names = self.names()
        images = np.empty((count, 3, resolution, resolution), dtype=np.uint8)
        chosen = np.empty(count, dtype=np.int64)
        for i in range(count):
            images[i], chosen[i] = self._crop(i, seed=seed, resolution=resolution, names=names)
        gray = {"channels": 1, "grayscale": "itu-r-601-luma"} if self.config.grayscale else {}
        return ImageSplit(
            dataset=self.name,
            split=split,
            ids=[f"photos-s{seed}-{i:07d}" for i in range(count)],
            images=luma_gray(images) if self.config.grayscale else images,
            captions=[[self.config.caption] for _ in range(count)],
            attributes={"photo": chosen},
            attribute_schema={"photo": names},
            info={
                "source": self.name,
                "resolution": resolution,
                "seed": seed,
                "resize_mode": f"{self.config.resize}@reducing_gap={REDUCING_GAP}",
                "crop": [self.config.min_crop, self.config.max_crop],
                **gray,
            },
        )

    def _crop(
        self, index: int, *, seed: int, resolution: int, names: list[str]
    ) -> tuple[np.ndarray, int]:
        """Item ``index``: its uint8 ``(3, r, r)`` crop and the index of its photo."""
        from PIL import Image

        rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
        which = int(rng.integers(len(names)))
        photo = load_photo(names[which])
        left, top, side = crop_params(
            rng,
            width=photo.width,
            height=photo.height,
            min_crop=self.config.min_crop,
            max_crop=self.config.max_crop,
        )
        mirror = self.config.flip and bool(rng.integers(2))
        crop = photo.resize(
            (resolution, resolution),
            resize_policy(self.config.resize).resample,
            box=(left, top, left + side, top + side),
            reducing_gap=REDUCING_GAP,
        )
        if mirror:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return np.asarray(crop, dtype=np.uint8).transpose(2, 0, 1), which

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "photos": self.names(),
            "default_size": self.config.size,
            "crop": [self.config.min_crop, self.config.max_crop],
            "grayscale": self.config.grayscale,
        }
