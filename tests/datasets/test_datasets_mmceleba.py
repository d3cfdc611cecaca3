from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from datasets_fixtures import ATTRIBUTE_NAMES

from isoeps.datasets import load_split, load_splits
from isoeps.errors import ConfigError, DataError


def test_counts_captions_attributes(celeba_root: Path) -> None:
    splits = load_splits("mm-celeba-hq", root=str(celeba_root), resolution=16)
    assert sum(len(s) for s in splits.values()) == 20
    for split in splits.values():
        assert split.images.shape[1:] == (3, 16, 16) and split.images.dtype == np.uint8
        assert split.attribute_schema == {name: ["no", "yes"] for name in ATTRIBUTE_NAMES}
        for i, record_id in enumerate(split.ids):
            index = int(record_id.split(":")[1])
            assert split.captions[i] == [f"face {index} caption {k}" for k in range(10)]
            for k, name in enumerate(ATTRIBUTE_NAMES):
                assert split.attributes[name][i] == (index >> k) & 1


def test_deterministic(celeba_root: Path) -> None:
    a = load_split("mm-celeba-hq", "private", root=str(celeba_root), resolution=8, n=4, seed=1)
    b = load_split(
        "mm-celeba-hq",
        "private",
        root=str(celeba_root),
        resolution=8,
        n=4,
        seed=1,
        options={"cache": False},
    )
    assert a.fingerprint() == b.fingerprint()


def test_root_from_env(celeba_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MMCELEBA_ROOT", raising=False)
    with pytest.raises(DataError, match="MMCELEBA_ROOT.*CelebA-HQ-img"):
        load_split("mm-celeba-hq", "private")
    monkeypatch.setenv("MMCELEBA_ROOT", str(celeba_root))
    assert len(load_split("mm-celeba-hq", "private", resolution=8)) > 0


def test_split_lists(celeba_root: Path) -> None:
    (celeba_root / "train.txt").write_text("\n".join(f"{i}.jpg" for i in range(14)))
    with open(celeba_root / "test.pickle", "wb") as handle:
        pickle.dump([str(i) for i in range(14, 20)], handle)
    options = {"split_lists": {"train": "train.txt", "test": "test.pickle"}}
    splits = load_splits("mm-celeba-hq", root=str(celeba_root), resolution=8, options=options)
    test_ids = {f"celebahq:{i}" for i in range(14, 20)}
    assert set(splits["reference"].ids) | set(splits["eval"].ids) == test_ids
    assert not (set(splits["private"].ids) | set(splits["public"].ids)) & test_ids


def test_missing_caption_file(celeba_root: Path) -> None:
    (celeba_root / "celeba-caption" / "7.txt").unlink()
    with pytest.raises(DataError, match=r"caption file .*7\.txt does not exist"):
        load_splits("mm-celeba-hq", root=str(celeba_root), resolution=8)


def test_empty_caption_file(celeba_root: Path) -> None:
    (celeba_root / "celeba-caption" / "3.txt").write_text("\n  \n")
    with pytest.raises(DataError, match=r"caption file .*3\.txt is empty"):
        load_splits("mm-celeba-hq", root=str(celeba_root), resolution=8)


def test_bad_attribute_file(celeba_root: Path) -> None:
    path = celeba_root / "CelebAMask-HQ-attribute-anno.txt"
    lines = path.read_text().splitlines()
    lines[4] = lines[4] + " 1"
    path.write_text("\n".join(lines))
    with pytest.raises(DataError, match=r"attribute-anno.txt:5: expected a file name and 3 values"):
        load_split("mm-celeba-hq", "private", root=str(celeba_root))
    path.unlink()
    with pytest.raises(DataError, match="attribute file .* does not exist"):
        load_split("mm-celeba-hq", "private", root=str(celeba_root))
    no_attributes = load_split(
        "mm-celeba-hq",
        "private",
        root=str(celeba_root),
        resolution=8,
        options={"attribute_file": None},
    )
    assert no_attributes.attributes is None and len(no_attributes) > 0


def test_truncated_image(celeba_root: Path) -> None:
    victim = celeba_root / "CelebA-HQ-img" / "2.jpg"
    victim.write_bytes(victim.read_bytes()[:200])
    with pytest.raises(DataError, match=r"2\.jpg is corrupt or truncated"):
        load_splits("mm-celeba-hq", root=str(celeba_root), resolution=8)


def test_unknown_pool(celeba_root: Path) -> None:
    with pytest.raises(ConfigError, match="splits.private.source 'train'"):
        load_split(
            "mm-celeba-hq",
            "private",
            root=str(celeba_root),
            options={"splits": {"private": {"source": "train"}}},
        )
