from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from isoeps.cache import cache_dir
from isoeps.datasets import load_split, load_splits, tensor_cache


@pytest.fixture
def fresh_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ISOEPS_CACHE_DIR", str(tmp_path / "cache"))
    return cache_dir() / tensor_cache.KIND


def _entries(folder: Path) -> list[Path]:
    return sorted(folder.glob("*/tensors.npz")) if folder.exists() else []


def test_cache_hit_equals_fresh_decode(coco_root: Path, fresh_cache: Path, monkeypatch) -> None:
    first = load_split("coco", "private", root=str(coco_root), resolution=12)
    assert len(_entries(fresh_cache)) == 1
    calls = []
    original = tensor_cache._write
    monkeypatch.setattr(
        tensor_cache, "_write", lambda *a, **k: calls.append(1) or original(*a, **k)
    )
    second = load_split("coco", "private", root=str(coco_root), resolution=12)
    assert calls == [] and second.fingerprint() == first.fingerprint()
    uncached = load_split(
        "coco", "private", root=str(coco_root), resolution=12, options={"cache": False}
    )
    assert np.array_equal(uncached.images, first.images)


def test_key_covers_resolution_mode_split_and_content(coco_root: Path, fresh_cache: Path) -> None:
    load_split("coco", "private", root=str(coco_root), resolution=12)
    load_split("coco", "private", root=str(coco_root), resolution=16)
    load_split(
        "coco", "private", root=str(coco_root), resolution=12, options={"resize": "center-crop-box"}
    )
    load_split("coco", "public", root=str(coco_root), resolution=12)
    assert len(_entries(fresh_cache)) == 4
    annotation = coco_root / "annotations" / "captions_train2017.json"
    data = json.loads(annotation.read_text())
    data["annotations"][0]["caption"] = "edited"
    annotation.write_text(json.dumps(data))
    load_split("coco", "private", root=str(coco_root), resolution=12)
    assert len(_entries(fresh_cache)) == 5


def test_changed_image_is_not_served_stale(coco_root: Path, fresh_cache: Path) -> None:
    from datasets_fixtures import write_jpeg

    before = load_split("coco", "private", root=str(coco_root), resolution=12)
    image_id = int(before.ids[0].split(":")[1])
    write_jpeg(coco_root / "train2017" / f"{image_id:012d}.jpg", seed=999, size=(50, 50))
    after = load_split("coco", "private", root=str(coco_root), resolution=12)
    assert not np.array_equal(after.images[0], before.images[0])
    assert np.array_equal(after.images[1:], before.images[1:])


def test_never_serves_one_split_for_another(tmp_path: Path, fresh_cache: Path) -> None:
    from datasets_fixtures import make_coco_pool

    root = tmp_path / "coco"
    make_coco_pool(root, "train2017", range(1, 13))
    make_coco_pool(root, "val2017", range(50, 62))
    splits = load_splits("coco", root=str(root), resolution=8)
    again = load_splits("coco", root=str(root), resolution=8)
    for name in splits:
        assert again[name].ids == splits[name].ids
        assert again[name].fingerprint() == splits[name].fingerprint()
    # Even a forged entry under another split's key is refused: the entry records its split.
    ids = splits["private"].ids
    files = [root / "train2017" / f"{int(i.split(':')[1]):012d}.jpg" for i in ids]
    built = (splits["private"].images, list(range(len(ids))), [])
    key = tensor_cache.entry_key(
        dataset="coco",
        split="public",
        ids=ids,
        files=files,
        key_files=[],
        resolution=8,
        resize="center-crop-bicubic",
        on_error="fail",
        file_key="stat",
    )
    target = tensor_cache.cache_path(tensor_cache.KIND, key) / "tensors.npz"
    tensor_cache._write(target, split="private", ids=ids, built=built)
    assert tensor_cache._read(target, split="public", ids=ids) is None
    assert tensor_cache._read(target, split="private", ids=ids) is not None
    assert not list(target.parent.glob(".tmp-*"))  # atomic write left no temp file
