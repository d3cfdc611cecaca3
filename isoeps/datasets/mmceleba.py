"""mm-celeba-hq: Multi-Modal-CelebA-HQ in the layout published with TediGAN."""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, model_validator

from isoeps.datasets.assign import SplitSpec, check_no_range_overlap, in_range, subset
from isoeps.datasets.base import SPLITS, ImageSplit
from isoeps.datasets.files import FileItem, FileSourceConfig, load_images, read_text
from isoeps.datasets.source import DatasetSource, resolve_root
from isoeps.errors import DataError

ENV_VAR = "MMCELEBA_ROOT"
LAYOUT = (
    "ROOT/CelebA-HQ-img/<i>.jpg, ROOT/celeba-caption/<i>.txt (captions, one per line), "
    "ROOT/CelebAMask-HQ-attribute-anno.txt (count, 40 names, then '<i>.jpg' + 40 values of "
    "1/-1), optional split lists (one index or file name per line, or an AttnGAN "
    "filenames.pickle)"
)
DEFAULT_SPLITS = {
    "private": SplitSpec(source="all", range=(0.0, 0.6)),
    "public": SplitSpec(source="all", range=(0.6, 0.8)),
    "reference": SplitSpec(source="all", range=(0.8, 0.9)),
    "eval": SplitSpec(source="all", range=(0.9, 1.0)),
}
DEFAULT_SPLITS_WITH_LISTS = {
    "private": SplitSpec(source="train", range=(0.0, 0.8)),
    "public": SplitSpec(source="train", range=(0.8, 1.0)),
    "reference": SplitSpec(source="test", range=(0.0, 0.5)),
    "eval": SplitSpec(source="test", range=(0.5, 1.0)),
}


class MMCelebAConfig(FileSourceConfig):
    image_dir: str = "CelebA-HQ-img"
    caption_dir: str = "celeba-caption"
    attribute_file: str | None = Field(
        "CelebAMask-HQ-attribute-anno.txt", description="relative to root; null: no attributes"
    )
    split_lists: dict[str, str] = Field(
        default_factory=dict,
        description="named pools, e.g. {train: train.txt, test: test.txt} (paths under root)",
    )
    splits: dict[str, SplitSpec] | None = Field(
        None, description="per split: pool ('all' or a split_lists name) and rank range"
    )

    @model_validator(mode="after")
    def _check(self) -> MMCelebAConfig:
        splits = self.resolved_splits()
        for split, spec in splits.items():
            if split not in SPLITS:
                raise ValueError(f"splits: unknown split {split!r}; known: {', '.join(SPLITS)}")
            if spec.source != "all" and spec.source not in self.split_lists:
                raise ValueError(
                    f"splits.{split}.source {spec.source!r} is neither 'all' nor one of "
                    f"split_lists ({', '.join(self.split_lists) or 'none given'})"
                )
        check_no_range_overlap(splits, name="mm-celeba-hq")
        return self

    def resolved_splits(self) -> dict[str, SplitSpec]:
        if self.splits is not None:
            return self.splits
        if {"train", "test"} <= set(self.split_lists):
            return dict(DEFAULT_SPLITS_WITH_LISTS)
        return dict(DEFAULT_SPLITS)


@dataclass
class _Pool:
    stems: list[str]
    spec: SplitSpec
    root: Path
    image_dir: Path
    key_files: list[Path]
    schema: dict[str, list[str]] | None
    rows: dict[str, list[int]]


class MMCelebAHQ(DatasetSource):
    """Multi-Modal-CelebA-HQ (TediGAN): 30k faces, 10 captions each, 40 binary attributes.

    Items are the rows of the attribute file (or the image folder's ``<i>.jpg`` files when
    ``attribute_file`` is null). Every item needs its caption file with at least one line.
    Default splits: 60/20/10/10 % rank ranges of all images for private/public/reference/eval;
    with ``split_lists`` train and test, private/public split train 80/20 and reference/eval
    split test in halves. Root: ``root`` or ``$MMCELEBA_ROOT``.
    """

    name: ClassVar[str] = "mm-celeba-hq"
    description: ClassVar[str] = "Multi-Modal-CelebA-HQ (TediGAN layout; root or $MMCELEBA_ROOT)"
    Config: ClassVar[type[MMCelebAConfig]] = MMCelebAConfig

    def _pool(self, split: str) -> _Pool:
        """The split's image stems before subsetting, with what loading them needs."""
        self.check_split(split)
        spec = self.config.resolved_splits().get(split)
        if spec is None:
            raise DataError(f"mm-celeba-hq: no source configured for split {split!r}")
        root = resolve_root(
            name="mm-celeba-hq", root=self.config.root, env_var=ENV_VAR, layout=LAYOUT
        )
        image_dir = root / self.config.image_dir
        if not image_dir.is_dir():
            raise DataError(
                f"mm-celeba-hq: image folder {image_dir} does not exist. Layout: {LAYOUT}"
            )
        key_files: list[Path] = []
        schema = None
        if self.config.attribute_file:
            attribute_path = root / self.config.attribute_file
            key_files.append(attribute_path)
            names, rows = read_attribute_file(attribute_path)
            schema = {name: ["no", "yes"] for name in names}
            stems = list(rows)
        else:
            rows = {}
            stems = sorted((p.stem for p in image_dir.glob("*.jpg")), key=_index_order)
        if spec.source != "all":
            list_path = root / self.config.split_lists[spec.source]
            key_files.append(list_path)
            listed = read_split_list(list_path)
            unknown = listed - set(stems)
            if unknown:
                raise DataError(
                    f"{list_path}: {len(unknown)} listed image(s) are not in the dataset, "
                    f"e.g. {sorted(unknown, key=_index_order)[:3]}"
                )
            stems = [s for s in stems if s in listed]
        ids = [f"celebahq:{s}" for s in stems]
        stems = in_range(stems, ids, spec, label=f"mm-celeba-hq/{split}")
        return _Pool(stems, spec, root, image_dir, key_files, schema, rows)

    def available(self, split: str) -> int:
        return len(self._pool(split).stems)

    def load(
        self, split: str, *, resolution: int = 32, n: int | None = None, seed: int = 0
    ) -> ImageSplit:
        """One split of MM-CelebA-HQ: its range of the pool, ``n`` images chosen by ``seed``.

        Args:
            split: one of this source's splits.
            resolution: side length R of the square images, in pixels; >= 4.
            n: how many images; None for every image in the split's range.
            seed: the seed that picks the images.

        Returns:
            The split, with captions and, when an attribute file is configured, its attributes.

        Raises:
            ConfigError: ``split`` or ``resolution`` is not supported.
            DataError: the split has no configured pool, a caption file or image cannot be
                read, or ``n`` exceeds the pool.
        """
        self.check_resolution(resolution)
        pool = self._pool(split)
        chosen = subset(pool.stems, pool.spec, n=n, seed=seed, label=f"mm-celeba-hq/{split}")
        caption_dir = pool.root / self.config.caption_dir
        key_files = list(pool.key_files)
        items = []
        for stem in chosen:
            caption_path = caption_dir / f"{stem}.txt"
            key_files.append(caption_path)
            items.append(
                FileItem(
                    id=f"celebahq:{stem}",
                    path=pool.image_dir / f"{stem}.jpg",
                    captions=read_caption_file(caption_path),
                    attributes=dict(zip(pool.schema, pool.rows[stem])) if pool.schema else {},
                )
            )
        return load_images(
            dataset=self.name,
            split=split,
            items=items,
            resolution=resolution,
            config=self.config,
            listed_in=str(self.config.attribute_file or pool.image_dir),
            key_files=key_files,
            schema=pool.schema,
            info={
                "source": "mm-celeba-hq",
                "root": str(pool.root),
                "pool": pool.spec.source,
                "range": list(pool.spec.range),
                "seed": seed,
            },
        )

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "env_var": ENV_VAR,
            "layout": LAYOUT,
            "splits": {k: v.model_dump() for k, v in self.config.resolved_splits().items()},
        }


def _index_order(stem: str) -> tuple[int, str]:
    return (int(stem), stem) if stem.isdigit() else (1 << 62, stem)


def read_attribute_file(path: Path) -> tuple[list[str], dict[str, list[int]]]:
    """CelebA attribute format -> (names, {stem: [0/1 per attribute]}); errors name the line."""
    lines = [line for line in read_text(path, what="attribute file").splitlines() if line.strip()]
    if len(lines) < 2:
        raise DataError(f"{path}: expected a count line and a names line, got {len(lines)} line(s)")
    try:
        count = int(lines[0].split()[0])
    except ValueError:
        raise DataError(f"{path}:1: first line must be the image count, got {lines[0]!r}") from None
    names = lines[1].split()
    rows: dict[str, list[int]] = {}
    for number, line in enumerate(lines[2:], start=3):
        fields = line.split()
        if len(fields) != len(names) + 1:
            raise DataError(
                f"{path}:{number}: expected a file name and {len(names)} values, got {len(fields)} fields"
            )
        values = fields[1:]
        if any(v not in ("1", "-1") for v in values):
            raise DataError(f"{path}:{number}: attribute values must be 1 or -1")
        rows[Path(fields[0]).stem] = [1 if v == "1" else 0 for v in values]
    if len(rows) != count:
        raise DataError(f"{path}: header says {count} images but {len(rows)} rows follow")
    return names, rows


def read_caption_file(path: Path) -> list[str]:
    captions = [line.strip() for line in read_text(path, what="caption file").splitlines()]
    captions = [c for c in captions if c]
    if not captions:
        raise DataError(f"caption file {path} is empty")
    return captions


class _NoGlobals(pickle.Unpickler):
    """Unpickles plain containers of str/int only: a split list never needs a class."""

    def find_class(self, module: str, name: str):
        raise DataError(
            f"split list pickle refers to {module}.{name}; only lists of names are allowed"
        )


def read_split_list(path: Path) -> set[str]:
    """Image stems from a split list: text (one per line) or an AttnGAN filenames.pickle."""
    if path.suffix in (".pickle", ".pkl"):
        try:
            with open(path, "rb") as handle:
                entries = _NoGlobals(handle).load()
        except FileNotFoundError:
            raise DataError(f"split list {path} does not exist") from None
        except (pickle.UnpicklingError, EOFError) as exc:
            raise DataError(f"split list {path} is not a valid pickle: {exc}") from None
        if not isinstance(entries, (list, tuple)):
            raise DataError(f"split list {path} must hold a list of names")
        lines = [str(e) for e in entries]
    else:
        lines = read_text(path, what="split list").splitlines()
    stems = {Path(line.strip()).stem for line in lines if line.strip()}
    if not stems:
        raise DataError(f"split list {path} is empty")
    return stems
