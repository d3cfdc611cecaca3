"""Listed file names are read only inside the dataset root (issue 13, item 11): a COCO
``file_name`` with ``..`` or an absolute path is rejected, naming the file and the name."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from isoeps.datasets import load_split
from isoeps.errors import DataError


@pytest.mark.parametrize(
    "escape",
    ["../outside.jpg", "a/../../outside.jpg", "ABSOLUTE", "..\\outside.jpg", "C:/outside.jpg"],
)
def test_coco_file_name_outside_the_root_is_rejected(coco_root: Path, escape: str) -> None:
    path = coco_root / "annotations" / "captions_val2017.json"
    data = json.loads(path.read_text())
    first = coco_root / "val2017" / data["images"][0]["file_name"]
    outside = coco_root / "outside.jpg"  # a real image outside val2017/, so the read succeeds
    shutil.copy(first, outside)
    name = str(outside) if escape == "ABSOLUTE" else escape
    for image in data["images"]:  # every image, so whichever the split takes reads outside
        image["file_name"] = name
    path.write_text(json.dumps(data))
    with pytest.raises(DataError) as caught:
        load_split("coco", "reference", root=str(coco_root), resolution=8, options={"cache": False})
    message = str(caught.value)
    assert str(path) in message and repr(name) in message and "images[0].file_name" in message


def test_coco_subfolder_file_names_still_load(coco_root: Path) -> None:
    path = coco_root / "annotations" / "captions_val2017.json"
    data = json.loads(path.read_text())
    name = data["images"][0]["file_name"]
    (coco_root / "val2017" / "sub").mkdir()
    shutil.move(coco_root / "val2017" / name, coco_root / "val2017" / "sub" / name)
    data["images"][0]["file_name"] = f"sub/./{name}"
    path.write_text(json.dumps(data))
    assert (
        len(
            load_split(
                "coco", "reference", root=str(coco_root), resolution=8, options={"cache": False}
            )
        )
        > 0
    )
