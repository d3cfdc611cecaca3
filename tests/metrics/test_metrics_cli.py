"""``isoeps metrics`` on folders and .npz files, and its input errors."""

from __future__ import annotations

import json

import numpy as np
from metrics_fixtures import shape_split, textured_images
from PIL import Image

from isoeps.cli.main import main
from isoeps.metrics.sources import load_source


def _write_folder(folder, images: np.ndarray) -> None:
    folder.mkdir()
    for i, image in enumerate(images):
        Image.fromarray(image.transpose(1, 2, 0)).save(folder / f"{i:03d}.png")


def test_metrics_list(capsys) -> None:
    assert main(["metrics", "list", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert {"fid", "kid", "pr", "clip", "mem", "attr", "utility", "spectrum"} <= set(
        payload["metrics"]
    )
    assert "inception" in payload["backbones"]


def test_compute_on_folder_and_npz(tmp_path, capsys) -> None:
    from isoeps.datasets import write_dpimagebench_npz

    real = textured_images(10, seed=0)
    fake = shape_split(10, seed=1)
    _write_folder(tmp_path / "real", real)
    npz = tmp_path / "gen.npz"
    write_dpimagebench_npz(
        npz,
        images=fake.images,
        labels=fake.attributes["colour"],
        captions=[c[0] for c in fake.captions],
    )
    code = main(
        [
            "metrics",
            "compute",
            "--real",
            str(tmp_path / "real"),
            "--fake",
            str(npz),
            "--metrics",
            "spectrum,mem",
            "--private",
            str(tmp_path / "real"),
            "--json",
        ]
    )
    assert code == 0
    values = {row["name"]: row for row in json.loads(capsys.readouterr().out)["values"]}
    assert values["spectrum_distance"]["value"] > 0 and values["spectrum_distance"]["n"] == 10
    assert values["mem_closer_to_train"]["details"]["prompt_source_excluded"] is False


def test_input_errors(tmp_path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    code = main(
        [
            "metrics",
            "compute",
            "--real",
            str(tmp_path / "empty"),
            "--fake",
            str(tmp_path / "empty"),
            "--metrics",
            "spectrum",
        ]
    )
    assert code == 2 and "no images" in capsys.readouterr().err
    code = main(
        [
            "metrics",
            "compute",
            "--real",
            "no-such-dataset",
            "--fake",
            str(tmp_path / "empty"),
            "--metrics",
            "spectrum",
        ]
    )
    assert code == 2 and "not a folder" in capsys.readouterr().err
    code = main(
        [
            "metrics",
            "compute",
            "--real",
            str(tmp_path / "x"),
            "--fake",
            str(tmp_path / "x"),
            "--backbone",
            "nope",
            "--metrics",
            "fid",
        ]
    )
    assert code == 2


def test_mixed_sizes_are_resized_and_recorded(tmp_path) -> None:
    folder = tmp_path / "mixed"
    _write_folder(folder, textured_images(3, size=32))
    Image.fromarray(textured_images(1, size=64)[0].transpose(1, 2, 0)).save(folder / "big.png")
    split = load_source(str(folder), role="fake")
    assert split.images.shape == (4, 3, 32, 32)
    assert split.info["resized"]["count"] == 1 and split.info["resized"]["first"] == ["big.png"]


def test_unknown_backbone_is_a_usage_error(tmp_path, capsys) -> None:
    _write_folder(tmp_path / "a", textured_images(8))
    code = main(
        [
            "metrics",
            "compute",
            "--real",
            str(tmp_path / "a"),
            "--fake",
            str(tmp_path / "a"),
            "--backbone",
            "nope",
            "--metrics",
            "fid",
        ]
    )
    assert code == 2 and "known: " in capsys.readouterr().err
