from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from datasets_fixtures import make_coco_pool

from isoeps.datasets import SPLITS, load_split, load_splits
from isoeps.errors import ConfigError, DataError


def test_coco_counts_captions_shapes(coco_root: Path) -> None:
    splits = load_splits("coco", root=str(coco_root), resolution=16)
    assert sum(len(splits[s]) for s in ("private", "public")) == 24
    assert sum(len(splits[s]) for s in ("reference", "eval")) == 12
    for name in SPLITS:
        split = splits[name]
        assert split.images.dtype == np.uint8 and split.images.shape[1:] == (3, 16, 16)
        assert split.images.std() > 5  # real pixels, not zeros
        for record_id, captions in zip(split.ids, split.captions):
            image_id = int(record_id.split(":")[1])
            assert captions == [f"photo {image_id} #0", f"photo {image_id} #1"]
    assert splits["reference"].info["pool"] == "val2017"


def test_coco_deterministic_and_seeded_subset(coco_root: Path) -> None:
    a = load_split("coco", "private", root=str(coco_root), n=5, seed=3, resolution=8)
    b = load_split(
        "coco", "private", root=str(coco_root), n=5, seed=3, resolution=8, options={"cache": False}
    )
    assert a.ids == b.ids and np.array_equal(a.images, b.images)
    c = load_split("coco", "private", root=str(coco_root), n=5, seed=4, resolution=8)
    assert c.ids != a.ids


def test_coco_root_from_env(coco_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COCO_ROOT", str(coco_root))
    assert len(load_split("coco", "eval", resolution=8)) > 0
    monkeypatch.delenv("COCO_ROOT")
    with pytest.raises(DataError, match="COCO_ROOT"):
        load_split("coco", "eval", resolution=8)


def test_missing_annotations_file(coco_root: Path) -> None:
    (coco_root / "annotations" / "captions_val2017.json").unlink()
    with pytest.raises(DataError, match="captions_val2017.json does not exist"):
        load_split("coco", "reference", root=str(coco_root), resolution=8)


def test_malformed_json_field(coco_root: Path) -> None:
    path = coco_root / "annotations" / "captions_val2017.json"
    data = json.loads(path.read_text())
    del data["images"][2]["file_name"]
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"images\[2\]\.file_name"):
        load_split("coco", "reference", root=str(coco_root), resolution=8)
    path.write_text("{not json")
    with pytest.raises(DataError, match="invalid JSON"):
        load_split("coco", "reference", root=str(coco_root), resolution=8)


def test_image_without_caption(coco_root: Path) -> None:
    path = coco_root / "annotations" / "captions_val2017.json"
    data = json.loads(path.read_text())
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] != 1005]
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match="image id 1005 .* has no caption"):
        load_split("coco", "eval", root=str(coco_root), resolution=8)


def test_image_in_json_absent_on_disk(coco_root: Path) -> None:
    split = load_split("coco", "private", root=str(coco_root), resolution=8)
    victim = int(split.ids[0].split(":")[1])
    (coco_root / "train2017" / f"{victim:012d}.jpg").unlink()
    with pytest.raises(DataError, match=f"{victim:012d}.jpg .*does not exist"):
        load_split("coco", "private", root=str(coco_root), resolution=8)


def test_truncated_jpeg_fail_and_skip(coco_root: Path) -> None:
    split = load_split(
        "coco", "private", root=str(coco_root), resolution=8, options={"cache": False}
    )
    victim = coco_root / "train2017" / f"{int(split.ids[1].split(':')[1]):012d}.jpg"
    victim.write_bytes(victim.read_bytes()[: len(victim.read_bytes()) // 2])
    with pytest.raises(DataError, match=f"{victim.name} is corrupt or truncated"):
        load_split("coco", "private", root=str(coco_root), resolution=8)
    skipped = load_split(
        "coco", "private", root=str(coco_root), resolution=8, options={"on_error": "skip"}
    )
    assert len(skipped) == len(split) - 1 and skipped.info["skipped"] == 1
    assert split.ids[1] not in skipped.ids


def test_listed_non_image_file(coco_root: Path) -> None:
    (coco_root / "val2017" / "000000001003.jpg").write_text("not a picture")
    with pytest.raises(DataError, match="000000001003.jpg is not an image"):
        load_splits("coco", ["reference", "eval"], root=str(coco_root), resolution=8)


def test_planted_overlap_between_pools_is_caught(tmp_path: Path) -> None:
    root = tmp_path / "coco"
    make_coco_pool(root, "train2017", range(1, 9))
    # val2014 shares image 5 with train2017 (same id, same pixels), as real COCO does.
    make_coco_pool(root, "val2014", [5, 100, 101, 102])
    options = {"splits": {"private": {"source": "train2017"}, "public": {"source": "val2014"}}}
    with pytest.raises(
        DataError, match=r"'public' and 'private' share 1 image id\(s\), e\.g\. coco:5"
    ):
        load_splits("coco", ["public", "private"], root=str(root), resolution=8, options=options)


def test_planted_pixel_overlap_under_another_id(tmp_path: Path) -> None:
    root = tmp_path / "coco"
    make_coco_pool(root, "train2017", range(1, 9))
    make_coco_pool(root, "val2017", [100, 101])
    (root / "val2017" / f"{100:012d}.jpg").write_bytes(
        (root / "train2017" / f"{3:012d}.jpg").read_bytes()
    )
    options = {"splits": {"private": {"source": "train2017"}, "reference": {"source": "val2017"}}}
    with pytest.raises(DataError, match="coco:3 == coco:100"):
        load_splits("coco", ["private", "reference"], root=str(root), resolution=8, options=options)


def test_config_errors_name_the_field(coco_root: Path) -> None:
    with pytest.raises(ConfigError, match="splits.private.source"):
        load_split(
            "coco",
            "private",
            root=str(coco_root),
            options={"splits": {"private": {"source": "train2019"}}},
        )
    with pytest.raises(ConfigError, match="overlapping ranges"):
        load_split(
            "coco",
            "private",
            root=str(coco_root),
            options={
                "splits": {
                    "private": {"source": "train2017", "range": [0, 0.6]},
                    "public": {"source": "train2017", "range": [0.5, 1]},
                }
            },
        )
    with pytest.raises(ConfigError, match="resise"):
        load_split("coco", "private", root=str(coco_root), options={"resise": "x"})


def test_available_counts_the_pool(coco_root: Path) -> None:
    from isoeps.datasets import get_source

    source = get_source("coco", root=str(coco_root))
    total = sum(source.available(s) for s in SPLITS)
    assert total == 24 + 12
    assert len(source.load("eval", resolution=8)) == source.available("eval")
    assert get_source("synthetic-faces").available("private") is None
