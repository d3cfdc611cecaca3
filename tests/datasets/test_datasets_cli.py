from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from isoeps.cli.main import main


def test_data_list_json(capsys) -> None:
    assert main(["data", "list", "--json"]) == 0
    names = [row["name"] for row in json.loads(capsys.readouterr().out)["datasets"]]
    assert {
        "synthetic-faces",
        "synthetic-scenes",
        "coco",
        "mm-celeba-hq",
        "imagefolder",
        "dpimagebench",
    } <= set(names)


def test_inspect_synthetic_with_grid(tmp_path: Path, capsys) -> None:
    grid = tmp_path / "grid.png"
    code = main(
        [
            "data",
            "inspect",
            "synthetic-faces",
            "--n",
            "300",
            "--split",
            "public",
            "--split",
            "private",
            "--grid",
            str(grid),
            "--json",
        ]
    )
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["splits"]["private"]["count"] == 300
    assert payload["splits"]["private"]["captions_per_image"]["min"] == 5
    assert (
        payload["source"]["shift"] == "both" and "texture" in payload["source"]["shift_description"]
    )
    freqs = payload["splits"]["public"]["attribute_frequencies"]["gender"]
    assert abs(sum(freqs.values()) - 1) < 1e-9
    assert np.mean(list(payload["public_vs_private_tv"].values())) > 0.3
    image = np.asarray(Image.open(grid))
    assert image.shape[0] > 300 and image.shape[1] > 600 and image.std() > 20


def test_inspect_text_and_options(capsys) -> None:
    assert main(["data", "inspect", "synthetic-scenes", "--n", "20", "--set", "shift=none"]) == 0
    out = capsys.readouterr().out
    assert "shift: none" in out and "[reference] 20 images" in out


def test_inspect_bad_input_exit_2(capsys, monkeypatch) -> None:
    monkeypatch.delenv("COCO_ROOT", raising=False)
    assert main(["data", "inspect", "coco"]) == 2
    assert "COCO_ROOT" in capsys.readouterr().err
    assert main(["data", "inspect", "synthetic-faces", "--set", "shfit=both"]) == 2
    assert "shfit" in capsys.readouterr().err


def test_inspect_coco_tree_with_grid(coco_root: Path, tmp_path: Path, capsys) -> None:
    grid = tmp_path / "coco.png"
    assert main(["data", "inspect", "coco", "--root", str(coco_root), "--grid", str(grid)]) == 0
    out = capsys.readouterr().out
    # --n 512 is an upper bound: the tiny tree is shown whole, with its pool sizes.
    assert "[reference]" in out and "of " in out and "captions per image 2.0" in out
    assert Image.open(grid).size[0] > 300
