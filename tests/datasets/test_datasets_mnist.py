"""fashion-mnist and mnist: file discovery, DPImageBench's splits, captions, labels, padding."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from isoeps.cli.main import main
from isoeps.datasets import ALL_SPLITS, check_disjoint, get_source, load_split, load_splits
from isoeps.datasets.base import ImageSplit
from isoeps.datasets.idx import write_idx
from isoeps.datasets.mnist import FASHION_CLASSES, FILES, FashionMNIST, dpimagebench_split
from isoeps.errors import ConfigError, DataError
from isoeps.metrics.dpimagebench.preprocess import sensitive_geometry, to_sensitive_resolution

N_TRAIN, N_TEST, SIDE = 48, 20, 28
DEBIAN = Path("/usr/share/datasets/fashion-mnist")


def write_mnist(folder: Path, *, gz: bool = True, seed: int = 0) -> dict[str, np.ndarray]:
    """Random (so pixel-distinct) 28x28 IDX files, labels i % 10; returns what was written."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for part, count in (("train", N_TRAIN), ("test", N_TEST)):
        images = rng.integers(0, 256, (count, SIDE, SIDE), dtype=np.uint8)
        labels = (np.arange(count) % 10).astype(np.uint8)
        stem_images, stem_labels = FILES[part]
        suffix = ".gz" if gz else ""
        write_idx(folder / f"{stem_images}{suffix}", images)
        write_idx(folder / f"{stem_labels}{suffix}", labels)
        arrays[f"{part}_images"], arrays[f"{part}_labels"] = images, labels
    return arrays


@pytest.fixture(autouse=True)
def _no_ambient_dataset(monkeypatch: pytest.MonkeyPatch) -> None:
    # The machine may have the Debian copy or the env vars: tests choose their files.
    monkeypatch.delenv("FASHION_MNIST_ROOT", raising=False)
    monkeypatch.delenv("MNIST_ROOT", raising=False)
    monkeypatch.setattr(FashionMNIST, "system_dirs", ("/nonexistent/fashion-mnist",))


@pytest.fixture
def fmnist(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    root = tmp_path / "fmnist"
    return root, write_mnist(root)


def torch_random_split(count: int, lengths: list[int]) -> list[list[int]]:
    """DPImageBench's own call, on the global generator (restored afterwards)."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return [s.indices for s in torch.utils.data.random_split(range(count), lengths)]


def test_splits_match_torch_random_split_and_are_disjoint(fmnist) -> None:
    root, arrays = fmnist
    splits = load_splits("fashion-mnist", root=str(root), resolution=28)
    assert list(splits) == ["private", "validation", "reference", "eval"]
    assert [len(splits[s]) for s in splits] == [44, 4, 20, 10]
    private, validation = torch_random_split(N_TRAIN, [44, 4])
    assert splits["private"].ids == [f"train-{i:05d}" for i in sorted(private)]
    assert splits["validation"].ids == [f"train-{i:05d}" for i in sorted(validation)]
    assert splits["reference"].ids == [f"test-{i:05d}" for i in range(N_TEST)]
    # Records are the file's records at those indices, three equal gray channels.
    index = int(splits["validation"].ids[1].split("-")[1])
    np.testing.assert_array_equal(splits["validation"].images[1, 0], arrays["train_images"][index])
    assert (splits["validation"].images[:, 1] == splits["validation"].images[:, 0]).all()
    assert splits["private"].info["channels"] == 1


def test_random_split_leaves_global_torch_state_alone() -> None:
    import torch

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    dpimagebench_split.cache_clear()
    private, validation = dpimagebench_split(120)
    assert torch.equal(torch.rand(3), expected)
    assert len(private) == 110 and len(validation) == 10
    assert sorted(torch_random_split(120, [110, 10])[0]) == private.tolist()


def test_eval_is_a_fixed_half_of_test_shared_with_reference_only(fmnist) -> None:
    root, _ = fmnist
    source = get_source("fashion-mnist", root=str(root))
    eval_ids = set(source.load("eval", resolution=28).ids)
    reference = source.load("reference", resolution=28)
    assert len(eval_ids) == N_TEST // 2 and eval_ids < set(reference.ids)
    assert eval_ids == set(source.load("eval", resolution=28, seed=5).ids)  # pool ignores seed
    private = source.load("private", resolution=28)
    assert not eval_ids & set(private.ids)
    assert reference.shares_records_with == ("eval",) and private.shares_records_with == ()


def test_shared_records_never_cover_private_or_undeclared_pairs(fmnist) -> None:
    root, _ = fmnist
    source = get_source("fashion-mnist", root=str(root))
    reference, eval_split = (source.load(s, resolution=28) for s in ("reference", "eval"))
    check_disjoint({"reference": reference, "eval": eval_split})
    # The same records under other names: only the declared pair may share.
    with pytest.raises(DataError, match="share 10 image id"):
        check_disjoint({"public": reference, "eval": eval_split})
    with pytest.raises(DataError, match="share 10 image id"):
        check_disjoint({"private": eval_split, "reference": reference})
    # Declarations set after construction (past __post_init__) still cannot open private.
    sneaky = reference.take(range(len(reference)))
    sneaky.shares_records_with = ("private",)
    with pytest.raises(DataError, match="share 10 image id"):
        check_disjoint({"private": eval_split, "reference": sneaky})
    with pytest.raises(ValueError, match="sensitive split"):
        ImageSplit(
            dataset="x",
            split="private",
            ids=["a"],
            images=np.zeros((1, 3, 4, 4), np.uint8),
            captions=[["c"]],
            shares_records_with=("reference",),
        )
    # A declared pair still refuses one picture under two different ids.
    clash = eval_split.take([0, 1])
    clash.images = clash.images.copy()
    clash.images[1] = reference.images[int(np.flatnonzero(~np.isin(reference.ids, clash.ids))[0])]
    with pytest.raises(DataError, match="identical image"):
        check_disjoint({"reference": reference, "eval": clash})


def test_public_split_is_refused_with_a_pointer_to_another_source(fmnist) -> None:
    root, _ = fmnist
    with pytest.raises(ConfigError, match="no public split.*another source.*skimage-photos"):
        load_split("fashion-mnist", "public", root=str(root))
    with pytest.raises(ConfigError, match="unknown split 'train'"):
        load_split("fashion-mnist", "train", root=str(root))
    with pytest.raises(ConfigError, match="synthetic-faces: this dataset has no validation split"):
        load_split("synthetic-faces", "validation", n=2)


def test_labels_and_caption_templates(fmnist) -> None:
    root, arrays = fmnist
    split = load_split("fashion-mnist", "reference", root=str(root), resolution=28)
    assert split.attribute_schema == {"label": list(FASHION_CLASSES)}
    np.testing.assert_array_equal(split.attributes["label"], arrays["test_labels"])
    assert split.captions[9] == ["a photo of a Ankle boot"]
    custom = load_split(
        "fashion-mnist",
        "reference",
        root=str(root),
        resolution=28,
        options={"caption_template": "{label}, on black"},
    )
    assert custom.captions[1] == ["Trouser, on black"]
    with pytest.raises(ConfigError, match="caption_template.*only the field"):
        get_source("fashion-mnist", options={"caption_template": "a {thing}"})
    with pytest.raises(ConfigError, match="mnist options: caption_template"):
        get_source("mnist", options={"caption_template": "digit {0}"})


def test_mnist_digits_env_var_and_torchvision_layout(tmp_path: Path, monkeypatch) -> None:
    # torchvision's download layout: <root>/MNIST/raw/, plain files beside nothing else.
    arrays = write_mnist(tmp_path / "tv" / "MNIST" / "raw", gz=False, seed=1)
    monkeypatch.setenv("MNIST_ROOT", str(tmp_path / "tv"))
    split = load_split("mnist", "reference", n=4, resolution=28)
    assert split.attribute_schema == {"label": [str(d) for d in range(10)]}
    assert split.info["root"] == str(tmp_path / "tv" / "MNIST" / "raw")
    index = int(split.ids[0].split("-")[1])
    assert split.captions[0] == [f"a handwritten digit {index % 10}"]
    np.testing.assert_array_equal(split.images[0, 2], arrays["test_images"][index])


def test_env_var_and_root_precedence(tmp_path: Path, monkeypatch) -> None:
    write_mnist(tmp_path / "env", seed=2)
    write_mnist(tmp_path / "given" / "FashionMNIST" / "raw", seed=3)
    monkeypatch.setenv("FASHION_MNIST_ROOT", str(tmp_path / "env"))
    from_env = load_split("fashion-mnist", "eval", resolution=28)
    assert from_env.info["root"] == str(tmp_path / "env")
    given = load_split("fashion-mnist", "eval", resolution=28, root=str(tmp_path / "given"))
    assert given.info["root"].endswith("FashionMNIST/raw")
    assert given.fingerprint() != from_env.fingerprint()


def test_missing_dataset_lists_every_place_looked(tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(DataError) as caught:
        load_split("fashion-mnist", "private")
    message = str(caught.value)
    assert "/nonexistent/fashion-mnist" in message and "FASHION_MNIST_ROOT" in message
    assert "apt-get install -y dataset-fashion-mnist" in message
    with pytest.raises(DataError) as caught:
        load_split("fashion-mnist", "private", root=str(tmp_path / "empty"))
    message = str(caught.value)
    assert (
        f"{tmp_path / 'empty'};" in message and str(tmp_path / "empty/FashionMNIST/raw") in message
    )
    assert "/nonexistent" not in message  # a given root is never replaced by the system copy


def test_partial_copy_names_the_missing_files(fmnist) -> None:
    root, _ = fmnist
    (root / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="lacks t10k-labels-idx1-ubyte"):
        get_source("fashion-mnist", root=str(root)).available("reference")


def test_bad_labels_and_mismatched_counts_name_the_file(tmp_path: Path) -> None:
    root = tmp_path / "bad"
    write_mnist(root)
    write_idx(root / "t10k-labels-idx1-ubyte.gz", np.full(N_TEST, 10, np.uint8))
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz: label 10 at record 0"):
        load_split("fashion-mnist", "reference", root=str(root))
    write_idx(root / "t10k-labels-idx1-ubyte.gz", np.zeros(N_TEST - 1, np.uint8))
    with pytest.raises(DataError, match=f"{N_TEST} images but {N_TEST - 1} labels"):
        load_split("fashion-mnist", "reference", root=str(root))


def test_n_and_seed_pick_within_the_pool(fmnist) -> None:
    root, _ = fmnist
    source = get_source("fashion-mnist", root=str(root))
    pool = set(source.load("validation", resolution=28).ids)
    a, b = (source.load("validation", resolution=28, n=3, seed=s) for s in (0, 1))
    assert len(a) == 3 and set(a.ids) <= pool and set(b.ids) <= pool
    assert a.ids == source.load("validation", resolution=28, n=3, seed=0).ids
    assert a.ids != b.ids or a.ids != source.load("validation", resolution=28, n=3, seed=2).ids
    with pytest.raises(DataError, match="fashion-mnist/validation: asked for n=5"):
        source.load("validation", n=5)
    assert {s: source.available(s) for s in source.splits} == {
        "private": 44,
        "validation": 4,
        "reference": 20,
        "eval": 10,
    }


def test_padding_to_32_and_exact_crop_back(fmnist) -> None:
    root, arrays = fmnist
    split = load_split("fashion-mnist", "reference", root=str(root), resolution=32)
    assert split.images.shape == (N_TEST, 3, 32, 32)
    assert split.info["padding"] == 2 and split.info["native_resolution"] == 28
    border = np.ones((32, 32), bool)
    border[2:30, 2:30] = False
    assert (split.images[:, :, border] == 0).all()
    size, padding = sensitive_geometry(split)
    cropped, record = to_sensitive_resolution(split.images, size=size, padding=padding)
    np.testing.assert_array_equal(cropped[:, 0], arrays["test_images"])
    assert record["to_sensitive_resolution"]["mode"] == "crop-2"
    native = load_split("fashion-mnist", "reference", root=str(root), resolution=28)
    assert native.info["padding"] == 0 and native.info["resize_mode"] == "native"


def test_other_resolutions_resize_with_the_default_filter(fmnist) -> None:
    from isoeps.ops.images import DEFAULT_RESIZE, resize_pil

    root, arrays = fmnist
    split = load_split("fashion-mnist", "reference", root=str(root), resolution=56, n=3)
    assert split.info["resize_mode"] == DEFAULT_RESIZE and split.info["padding"] == 0
    index = int(split.ids[0].split("-")[1])
    expected = resize_pil(
        Image.fromarray(arrays["test_images"][index]), resolution=56, mode=DEFAULT_RESIZE
    )
    np.testing.assert_array_equal(split.images[0, 0], np.asarray(expected)[..., 0])
    no_pad = load_split(
        "fashion-mnist", "reference", root=str(root), resolution=32, options={"pad_to": None}
    )
    assert no_pad.info["padding"] == 0 and no_pad.images[:, :, 0, 0].any()
    with pytest.raises(ConfigError, match="pad_to=31 cannot be reached"):
        load_split(
            "fashion-mnist", "reference", root=str(root), resolution=31, options={"pad_to": 31}
        )


def test_inspect_shows_validation_counts_and_grid(fmnist, tmp_path: Path, capsys) -> None:
    from isoeps.cli.data import SPLIT_CHOICES

    assert set(SPLIT_CHOICES) == set(ALL_SPLITS)
    root, _ = fmnist
    grid = tmp_path / "grid.png"
    code = main(
        ["data", "inspect", "fashion-mnist", "--root", str(root), "--grid", str(grid), "--json"]
    )
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    counts = {s: (v["count"], v["available"]) for s, v in payload["splits"].items()}
    assert counts == {
        "private": (44, 44),
        "validation": (4, 4),
        "reference": (20, 20),
        "eval": (10, 10),
    }
    assert len(payload["source"]["classes"]) == 10
    assert payload["splits"]["private"]["example_captions"][0].startswith("a photo of a ")
    assert Image.open(grid).size[0] > 300


@pytest.mark.skipif(
    not all((DEBIAN / f"{stem}.gz").is_file() for stems in FILES.values() for stem in stems),
    reason="the Debian Fashion-MNIST files are not installed (apt-get install dataset-fashion-mnist)",
)
def test_real_debian_fashion_mnist(monkeypatch) -> None:
    monkeypatch.setattr(FashionMNIST, "system_dirs", (str(DEBIAN),))
    splits = load_splits("fashion-mnist", resolution=32)  # checks the splits disjoint
    assert {s: len(v) for s, v in splits.items()} == {
        "private": 55000,
        "validation": 5000,
        "reference": 10000,
        "eval": 5000,
    }
    private, validation = torch_random_split(60000, [55000, 5000])
    assert splits["private"].ids == [f"train-{i:05d}" for i in sorted(private)]
    assert splits["validation"].ids == [f"train-{i:05d}" for i in sorted(validation)]
    # Recorded with torch 2.x: a change means torch's randperm stream moved under DPImageBench.
    assert private[:3] == [36044, 10678, 57327] and validation[:3] == [30102, 43764, 35133]
    labels = splits["private"].attributes["label"]
    assert sorted(set(labels.tolist())) == list(range(10))
    assert np.bincount(splits["reference"].attributes["label"]).tolist() == [1000] * 10
    assert splits["private"].info["padding"] == 2 and splits["private"].info["channels"] == 1
    assert splits["reference"].captions[0] == ["a photo of a Ankle boot"]
    assert os.path.dirname(splits["reference"].info["files"][0]) == str(DEBIAN)
