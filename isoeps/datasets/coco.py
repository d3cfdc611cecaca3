"""coco: MS-COCO captions (2014 or 2017) in the official layout."""

from __future__ import annotations

import json
import re
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, ClassVar

from pydantic import Field, field_validator, model_validator

from isoeps.datasets.assign import SplitSpec, check_no_range_overlap, in_range, subset
from isoeps.datasets.base import SPLITS, ImageSplit
from isoeps.datasets.files import FileItem, FileSourceConfig, load_images, read_text
from isoeps.datasets.source import DatasetSource, resolve_root
from isoeps.errors import DataError

ENV_VAR = "COCO_ROOT"
LAYOUT = (
    "ROOT/annotations/captions_{train,val}{2014,2017}.json and image folders "
    "ROOT/{train,val}{2014,2017}/<file_name>"
)
_POOL = re.compile(r"^(train|val)(2014|2017)$")

DEFAULT_SPLITS = {
    "private": SplitSpec(source="train2017", range=(0.0, 0.5)),
    "public": SplitSpec(source="train2017", range=(0.5, 1.0)),
    "reference": SplitSpec(source="val2017", range=(0.0, 0.5)),
    "eval": SplitSpec(source="val2017", range=(0.5, 1.0)),
}


class CocoConfig(FileSourceConfig):
    splits: dict[str, SplitSpec] = Field(
        default_factory=lambda: dict(DEFAULT_SPLITS),
        description="per split: source pool (train2017, val2014, ...) and rank range",
    )

    @field_validator("splits")
    @classmethod
    def _pools(cls, splits: dict[str, SplitSpec]) -> dict[str, SplitSpec]:
        for split, spec in splits.items():
            if split not in SPLITS:
                raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
            if not _POOL.match(spec.source):
                raise ValueError(
                    f"splits.{split}.source must be train2014, val2014, train2017 or val2017, "
                    f"got {spec.source!r}"
                )
        return splits

    @model_validator(mode="after")
    def _disjoint_ranges(self) -> CocoConfig:
        check_no_range_overlap(self.splits, name="coco")
        return self


class CocoDataset(DatasetSource):
    """MS-COCO captions: ``annotations/captions_<pool>.json`` + ``<pool>/`` image folders.

    Each split takes a rank range of one pool (``splits`` option). Default: private and public
    are the two halves of train2017, reference and eval the two halves of val2017. Mixing years
    is allowed but train2017 contains most of val2014: the overlap check then names the shared
    image ids. Ids are ``coco:<image id>`` (COCO keeps image ids across years). The root comes
    from ``root`` or ``$COCO_ROOT``.
    """

    name: ClassVar[str] = "coco"
    description: ClassVar[str] = "MS-COCO captions 2014/2017 (official layout; root or $COCO_ROOT)"
    Config: ClassVar[type[CocoConfig]] = CocoConfig

    def _pool(self, split: str) -> tuple[list[FileItem], SplitSpec, Path, Path]:
        """The split's items before subsetting, its spec, the root and the annotation file."""
        self.check_split(split)
        spec = self.config.splits.get(split)
        if spec is None:
            raise DataError(f"coco: no source configured for split {split!r} (set splits.{split})")
        root = resolve_root(name="coco", root=self.config.root, env_var=ENV_VAR, layout=LAYOUT)
        annotation = root / "annotations" / f"captions_{spec.source}.json"
        items = read_captions_json(annotation, image_dir=root / spec.source)
        pool = in_range(items, [it.id for it in items], spec, label=f"coco/{split}")
        return pool, spec, root, annotation

    def available(self, split: str) -> int:
        return len(self._pool(split)[0])

    def load(
        self, split: str, *, resolution: int = 32, n: int | None = None, seed: int = 0
    ) -> ImageSplit:
        """One split of COCO: its range of the configured pool, ``n`` items chosen by ``seed``.

        Args:
            split: one of this source's splits.
            resolution: side length R of the square images, in pixels; >= 4.
            n: how many items; None for every item in the split's range.
            seed: the seed that picks the items.

        Returns:
            The split: uint8 ``(n, 3, R, R)`` images with their captions.

        Raises:
            ConfigError: ``split`` or ``resolution`` is not supported.
            DataError: the split has no configured pool, the annotations or an image cannot
                be read, or ``n`` exceeds the pool.
        """
        self.check_resolution(resolution)
        pool, spec, root, annotation = self._pool(split)
        return load_images(
            dataset=self.name,
            split=split,
            items=subset(pool, spec, n=n, seed=seed, label=f"coco/{split}"),
            resolution=resolution,
            config=self.config,
            listed_in=str(annotation),
            key_files=[annotation],
            info={
                "source": "coco",
                "root": str(root),
                "pool": spec.source,
                "range": list(spec.range),
                "seed": seed,
            },
        )

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "env_var": ENV_VAR,
            "layout": LAYOUT,
            "splits": {k: v.model_dump() for k, v in self.config.splits.items()},
        }


def is_inside_name(name: str) -> bool:
    """Whether a listed file name stays inside the folder it is read from: relative (on any
    platform's reading), with no ``..`` part."""
    posix = PurePosixPath(name.replace("\\", "/"))
    return not posix.is_absolute() and not PureWindowsPath(name).drive and ".." not in posix.parts


def read_captions_json(path: Path, *, image_dir: Path) -> list[FileItem]:
    """Parse a COCO captions file into items sorted by image id; errors name the field.

    Args:
        path: the ``captions_*.json`` file.
        image_dir: the folder the ``file_name`` entries are relative to.

    Returns:
        One item per image, with its captions in annotation-id order.

    Raises:
        DataError: the file is missing, not JSON, or a field is missing or invalid.
    """
    try:
        data = json.loads(read_text(path, what="COCO annotations file"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: invalid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: top level must be an object with 'images' and 'annotations'")
    for key in ("images", "annotations"):
        if not isinstance(data.get(key), list):
            raise DataError(f"{path}: missing or non-list field {key!r}")
    files: dict[int, str] = {}
    for i, image in enumerate(data["images"]):
        if not isinstance(image, dict) or not isinstance(image.get("id"), int):
            raise DataError(f"{path}: images[{i}].id is missing or not an integer")
        if not isinstance(image.get("file_name"), str) or not image["file_name"]:
            raise DataError(f"{path}: images[{i}].file_name is missing or not a string")
        if not is_inside_name(image["file_name"]):
            raise DataError(
                f"{path}: images[{i}].file_name {image['file_name']!r} must be a relative path "
                f"inside {image_dir} (no '..', not absolute)"
            )
        files[image["id"]] = image["file_name"]
    captions: dict[int, list[tuple[int, str]]] = {}
    for i, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict) or not isinstance(ann.get("image_id"), int):
            raise DataError(f"{path}: annotations[{i}].image_id is missing or not an integer")
        text = ann.get("caption")
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{path}: annotations[{i}].caption is missing or empty")
        if ann["image_id"] not in files:
            raise DataError(
                f"{path}: annotations[{i}].image_id {ann['image_id']} is not in 'images'"
            )
        captions.setdefault(ann["image_id"], []).append((int(ann.get("id", i)), text.strip()))
    items = []
    for image_id in sorted(files):
        if image_id not in captions:
            raise DataError(f"{path}: image id {image_id} ({files[image_id]}) has no caption")
        texts = [t for _, t in sorted(captions[image_id])]
        items.append(
            FileItem(id=f"coco:{image_id}", path=image_dir / files[image_id], captions=texts)
        )
    if not items:
        raise DataError(f"{path}: no images listed")
    return items
