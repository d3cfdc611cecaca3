"""imagefolder: a folder of images with optional captions, for public data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from isoeps.datasets.assign import SplitSpec, check_no_range_overlap, in_range, subset
from isoeps.datasets.base import SPLITS, ImageSplit
from isoeps.datasets.files import IMAGE_SUFFIXES, FileItem, FileSourceConfig, load_images, read_text
from isoeps.datasets.source import DatasetSource, resolve_root
from isoeps.errors import DataError

ENV_VAR = "IMAGEFOLDER_ROOT"
METADATA_SUFFIXES = frozenset({".txt", ".json", ".jsonl"})
LAYOUT = (
    "ROOT/**/<name>.{jpg,png,...}; captions from <name>.txt beside the image (one per line), "
    "or a captions file: JSON {relative path: caption or [captions]} or JSONL lines "
    '{"file_name": ..., "text" | "caption" | "captions": ...}'
)


class ImageFolderConfig(FileSourceConfig):
    captions_file: str | None = Field(None, description="JSON or JSONL under root (see layout)")
    default_caption: str | None = Field(
        None, description="caption for images that have none (else that is an error)"
    )
    unknown_files: Literal["fail", "ignore"] = Field(
        "fail", description="a file that is neither an image nor a caption: fail or ignore"
    )
    splits: dict[str, SplitSpec] = Field(
        default_factory=lambda: {"public": SplitSpec(source="all")},
        description="per split: rank range of the folder ('all'); default: everything is public",
    )

    @field_validator("splits")
    @classmethod
    def _valid(cls, splits: dict[str, SplitSpec]) -> dict[str, SplitSpec]:
        for split, spec in splits.items():
            if split not in SPLITS:
                raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
            if spec.source != "all":
                raise ValueError(f"splits.{split}.source must be 'all', got {spec.source!r}")
        check_no_range_overlap(splits, name="imagefolder")
        return splits


class ImageFolderDataset(DatasetSource):
    """Any folder of images (recursively), with captions from sidecar ``.txt`` files or one
    captions file. By default the whole folder is the ``public`` split; ``splits`` can carve
    rank ranges of it into other splits. Ids are ``imagefolder:<relative path>``.
    """

    name: ClassVar[str] = "imagefolder"
    description: ClassVar[str] = "a folder of images with optional captions (public data)"
    Config: ClassVar[type[ImageFolderConfig]] = ImageFolderConfig

    def _pool(self, split: str) -> tuple[list[tuple[Path, str]], SplitSpec, Path, Path | None]:
        """(image path, relative path) pairs of the split before subsetting, and context."""
        self.check_split(split)
        spec = self.config.splits.get(split)
        if spec is None:
            raise DataError(
                f"imagefolder: no {split!r} split configured "
                f"(splits: {', '.join(self.config.splits)})"
            )
        root = resolve_root(
            name="imagefolder", root=self.config.root, env_var=ENV_VAR, layout=LAYOUT
        )
        captions_path = root / self.config.captions_file if self.config.captions_file else None
        images = scan(root, captions_path=captions_path, unknown=self.config.unknown_files)
        if not images:
            raise DataError(f"imagefolder: no images under {root}")
        rels = [p.relative_to(root).as_posix() for p in images]
        ids = [f"imagefolder:{rel}" for rel in rels]
        pool = in_range(list(zip(images, rels)), ids, spec, label=f"imagefolder/{split}")
        return pool, spec, root, captions_path

    def available(self, split: str) -> int:
        return len(self._pool(split)[0])

    def load(
        self, split: str, *, resolution: int = 32, n: int | None = None, seed: int = 0
    ) -> ImageSplit:
        """One split of an image folder: its range of the pool, ``n`` images chosen by ``seed``.

        Each image's captions come from the captions file, else its ``.txt`` sidecar, else
        ``default_caption``.

        Args:
            split: one of this source's splits.
            resolution: side length R of the square images, in pixels; >= 4.
            n: how many images; None for every image in the split's range.
            seed: the seed that picks the images.

        Returns:
            The split: uint8 ``(n, 3, R, R)`` images with their captions.

        Raises:
            ConfigError: ``split`` or ``resolution`` is not supported.
            DataError: the split has no configured pool, an image has no caption, a caption
                file is empty or unreadable, an image cannot be read, or ``n`` exceeds the pool.
        """
        self.check_resolution(resolution)
        pool, spec, root, captions_path = self._pool(split)
        mapping = read_captions_file(captions_path) if captions_path else {}
        chosen = subset(pool, spec, n=n, seed=seed, label=f"imagefolder/{split}")
        items, key_files = [], [captions_path] if captions_path else []
        for path, rel in chosen:
            sidecar = path.with_suffix(".txt")
            if rel in mapping:
                captions = mapping[rel]
            elif sidecar.is_file():
                key_files.append(sidecar)
                captions = [
                    c.strip()
                    for c in read_text(sidecar, what="caption file").splitlines()
                    if c.strip()
                ]
                if not captions:
                    raise DataError(f"caption file {sidecar} is empty")
            elif self.config.default_caption is not None:
                captions = [self.config.default_caption]
            else:
                raise DataError(
                    f"imagefolder: {path} has no caption (add {sidecar.name}, list it in a "
                    "captions_file, or set default_caption)"
                )
            items.append(FileItem(id=f"imagefolder:{rel}", path=path, captions=captions))
        return load_images(
            dataset=self.name,
            split=split,
            items=items,
            resolution=resolution,
            config=self.config,
            listed_in=str(root),
            key_files=key_files,
            info={
                "source": "imagefolder",
                "root": str(root),
                "range": list(spec.range),
                "seed": seed,
            },
        )

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "env_var": ENV_VAR, "layout": LAYOUT}


def scan(root: Path, *, captions_path: Path | None, unknown: str) -> list[Path]:
    """Image files under ``root`` (sorted); other files fail unless ``unknown='ignore'``.

    Args:
        root: the folder to scan, recursively; hidden files and folders are skipped.
        captions_path: the captions file, skipped; None if there is none.
        unknown: ``"fail"`` or ``"ignore"``, for files that are neither images nor
            caption/metadata files.

    Returns:
        The image paths.

    Raises:
        DataError: an unknown file is found and ``unknown`` is ``"fail"``.
    """
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or path == captions_path:
            continue
        suffix = path.suffix.lower()
        if suffix in IMAGE_SUFFIXES:
            found.append(path)
        elif suffix not in METADATA_SUFFIXES and unknown == "fail":
            raise DataError(
                f"imagefolder: {path} is not an image ({', '.join(sorted(IMAGE_SUFFIXES))}) or a "
                "caption file (.txt, .json, .jsonl); remove it or set unknown_files: ignore"
            )
    return found


def read_captions_file(path: Path) -> dict[str, list[str]]:
    """{relative path: [captions]} from JSON or JSONL; errors name the file, line and field."""
    text = read_text(path, what="captions file")
    out: dict[str, list[str]] = {}

    def add(where: str, name: Any, value: Any) -> None:
        if not isinstance(name, str) or not name:
            raise DataError(f"{where}: file name must be a non-empty string")
        values = [value] if isinstance(value, str) else value
        if (
            not isinstance(values, list)
            or not values
            or not all(isinstance(v, str) and v.strip() for v in values)
        ):
            raise DataError(
                f"{where}: caption for {name!r} must be a non-empty string or list of strings"
            )
        out[name] = [v.strip() for v in values]

    if path.suffix == ".jsonl":
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{number}: invalid JSON ({exc})") from None
            key = next((k for k in ("captions", "caption", "text") if k in row), None)
            if key is None:
                raise DataError(f"{path}:{number}: no 'text', 'caption' or 'captions' field")
            add(f"{path}:{number}", row.get("file_name"), row[key])
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: invalid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise DataError(f"{path}: must be a JSON object mapping file names to captions")
        for name, value in data.items():
            add(f"{path}[{name!r}]", name, value)
    if not out:
        raise DataError(f"captions file {path} is empty")
    return out
