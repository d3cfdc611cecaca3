from __future__ import annotations

import json
from pathlib import Path

import pytest
from datasets_fixtures import write_jpeg

from isoeps.datasets import load_split
from isoeps.errors import DataError


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "public"
    for i in range(4):
        write_jpeg(root / "a" / f"{i}.jpg", seed=i)
        (root / "a" / f"{i}.txt").write_text(f"sidecar {i}\nsecond {i}\n")
    write_jpeg(root / "b.jpg", seed=9)
    (root / "captions.json").write_text(json.dumps({"b.jpg": ["from json"]}))
    return root


def test_captions_from_sidecars_and_file(folder: Path) -> None:
    split = load_split(
        "imagefolder",
        "public",
        root=str(folder),
        resolution=8,
        options={"captions_file": "captions.json"},
    )
    captions = dict(zip(split.ids, split.captions))
    assert captions["imagefolder:a/2.jpg"] == ["sidecar 2", "second 2"]
    assert captions["imagefolder:b.jpg"] == ["from json"]
    assert split.images.shape == (5, 3, 8, 8)


def test_jsonl_captions(folder: Path) -> None:
    (folder / "meta.jsonl").write_text(json.dumps({"file_name": "b.jpg", "text": "jsonl"}) + "\n")
    split = load_split(
        "imagefolder",
        "public",
        root=str(folder),
        resolution=8,
        options={"captions_file": "meta.jsonl"},
    )
    assert dict(zip(split.ids, split.captions))["imagefolder:b.jpg"] == ["jsonl"]


def test_missing_caption_and_default(folder: Path) -> None:
    with pytest.raises(DataError, match="b.jpg has no caption"):
        load_split("imagefolder", "public", root=str(folder), resolution=8)
    split = load_split(
        "imagefolder",
        "public",
        root=str(folder),
        resolution=8,
        options={"default_caption": "a photo"},
    )
    assert dict(zip(split.ids, split.captions))["imagefolder:b.jpg"] == ["a photo"]


def test_non_image_file_in_folder(folder: Path) -> None:
    (folder / "notes.md").write_text("hello")
    options = {"captions_file": "captions.json"}
    with pytest.raises(DataError, match="notes.md is not an image"):
        load_split("imagefolder", "public", root=str(folder), options=options)
    split = load_split(
        "imagefolder",
        "public",
        root=str(folder),
        resolution=8,
        options={**options, "unknown_files": "ignore"},
    )
    assert len(split) == 5
    (folder / "fake.png").write_text("not png")
    with pytest.raises(DataError, match="fake.png is not an image"):
        load_split(
            "imagefolder",
            "public",
            root=str(folder),
            resolution=8,
            options={**options, "default_caption": "x", "unknown_files": "ignore"},
        )


def test_only_configured_splits(folder: Path) -> None:
    with pytest.raises(DataError, match="no 'private' split configured"):
        load_split("imagefolder", "private", root=str(folder))
