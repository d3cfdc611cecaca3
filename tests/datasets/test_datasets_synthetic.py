from __future__ import annotations

import numpy as np
import pytest

from isoeps.datasets import SPLITS, check_disjoint, load_split, load_splits
from isoeps.datasets.stats import attribute_frequencies, total_variation
from isoeps.datasets.synthetic import SyntheticFaces, SyntheticScenes
from isoeps.datasets.synthetic._render import coords
from isoeps.errors import ConfigError

NAMES = ["synthetic-faces", "synthetic-scenes"]


def _hf_energy(images: np.ndarray) -> float:
    """Mean energy of the finest detail (pixel differences) per unit of image variance."""
    x = images.astype(np.float64).mean(axis=1)
    return float(np.mean(np.diff(x, axis=-1) ** 2) / x.var())


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("resolution", [32, 64])
def test_shapes_captions_attributes(name: str, resolution: int) -> None:
    split = load_split(name, "private", resolution=resolution, n=40)
    assert split.images.shape == (40, 3, resolution, resolution)
    assert split.images.dtype == np.uint8
    assert all(len(c) == 5 and all(isinstance(t, str) and t for t in c) for c in split.captions)
    assert split.attribute_schema and set(split.attributes) == set(split.attribute_schema)
    for attribute, values in split.attributes.items():
        assert values.shape == (40,) and values.min() >= 0
        assert values.max() < len(split.attribute_schema[attribute])
    # Real fine texture: neighbouring pixels differ noticeably everywhere.
    assert _hf_energy(split.images) > 0.02


def test_face_captions_state_the_attributes() -> None:
    split = load_split("synthetic-faces", "private", n=64, options={"captions_per_image": 3})
    schema = split.attribute_schema
    for i in range(len(split)):
        record = split[i]
        colour = schema["hair_color"][record.attributes["hair_color"]]
        woman = record.attributes["gender"] == 0
        for caption in record.captions:
            assert f"{colour} hair" in caption
            assert ("She" in caption) == woman and ("He " in caption) == (not woman)
            assert ("glasses" in caption) == bool(record.attributes["eyeglasses"])
            assert ("smil" in caption) == bool(record.attributes["smiling"])
            assert ("beard" in caption) == bool(record.attributes["beard"])
        if woman:
            assert record.attributes["beard"] == 0


def test_scene_captions_are_compositional() -> None:
    split = load_split("synthetic-scenes", "private", n=64)
    for i in range(len(split)):
        record = split[i]
        count = record.attributes["count"] + 1
        first_colour = split.attribute_schema["color_1"][record.attributes["color_1"]]
        ground = split.attribute_schema["background"][record.attributes["background"]]
        for caption in record.captions:
            assert first_colour in caption and ground in caption
            assert ("left of" in caption or "right of" in caption) == (count == 2)
            assert caption.count(" a ") + caption.startswith("a ") >= count


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_and_prefix_stable(name: str) -> None:
    a = load_split(name, "private", n=150, seed=7)
    b = load_split(name, "private", n=150, seed=7)
    assert a.fingerprint() == b.fingerprint()
    short = load_split(name, "private", n=10, seed=7)
    assert short.ids == a.ids[:10] and np.array_equal(short.images, a.images[:10])
    assert short.captions == a.captions[:10]
    other = load_split(name, "private", n=10, seed=8)
    assert not np.array_equal(other.images, short.images)


@pytest.mark.parametrize("name", NAMES)
def test_splits_disjoint_by_construction(name: str) -> None:
    splits = load_splits(name, n=64)  # runs check_disjoint
    assert set(splits) == set(SPLITS)
    prefixes = {split.ids[0].split("-")[1] for split in splits.values()}
    assert prefixes == set(SPLITS)


def test_default_sizes_and_overrides() -> None:
    source = SyntheticFaces()
    assert source.default_size("private") >= 20000 and source.default_size("public") >= 20000
    assert 1000 <= source.default_size("reference") <= 10000
    small = SyntheticFaces(sizes={"eval": 12})
    assert len(small.load("eval")) == 12
    splits = load_splits(
        "synthetic-scenes",
        n={"private": 5, "public": 3},
        options={"sizes": {"reference": 2, "eval": 4}},
    )
    assert {k: len(v) for k, v in splits.items()} == {
        "public": 3,
        "private": 5,
        "reference": 2,
        "eval": 4,
    }


def test_bad_options_name_the_field() -> None:
    with pytest.raises(ConfigError, match="shfit"):
        SyntheticFaces(shfit="both")
    with pytest.raises(ConfigError, match="shift"):
        SyntheticFaces(shift="colours")
    with pytest.raises(ConfigError, match="sizes"):
        SyntheticFaces(sizes={"train": 5})
    with pytest.raises(ConfigError, match="unknown split"):
        SyntheticFaces().load("train")


def _mean_tv(a, b) -> float:
    fa, fb = attribute_frequencies(a), attribute_frequencies(b)
    return float(np.mean([total_variation(fa[k], fb[k]) for k in fa]))


@pytest.mark.parametrize("cls", [SyntheticFaces, SyntheticScenes])
def test_attribute_shift(cls) -> None:
    n = 1000
    shifted = cls(shift="attributes")
    private = shifted.load("private", n=n, resolution=8)
    public = shifted.load("public", n=n, resolution=8)
    reference = shifted.load("reference", n=n, resolution=8)
    assert _mean_tv(public, private) >= 0.3
    assert _mean_tv(reference, private) < 0.08  # reference follows private
    unshifted = cls(shift="texture").load("public", n=n, resolution=8)
    assert _mean_tv(unshifted, private) < 0.08


def _fine_to_mid(split) -> float:
    """Spectral energy above 0.35 cycles/pixel over energy in 0.12-0.3 cycles/pixel."""
    x = split.images.astype(np.float64).mean(axis=1)
    x -= x.mean(axis=(1, 2), keepdims=True)
    power = (np.abs(np.fft.fft2(x)) ** 2).mean(axis=0)
    f = np.fft.fftfreq(split.resolution)
    radius = np.sqrt(f[:, None] ** 2 + f[None, :] ** 2)
    return float(power[radius > 0.35].sum() / power[(radius > 0.12) & (radius < 0.3)].sum())


@pytest.mark.parametrize("cls", [SyntheticFaces, SyntheticScenes])
def test_texture_shift(cls) -> None:
    n = 128
    private = cls(shift="texture").load("private", n=n, resolution=32)
    public_b = cls(shift="texture").load("public", n=n, resolution=32)
    public_a = cls(shift="none").load("public", n=n, resolution=32)
    assert public_b.info["texture_family"] == "B" and public_a.info["texture_family"] == "A"
    # Family B puts its fine energy at mid frequencies; family A reaches towards Nyquist.
    assert _fine_to_mid(public_b) < 0.5 * _fine_to_mid(private)
    assert abs(_fine_to_mid(public_a) - _fine_to_mid(private)) < 0.25 * _fine_to_mid(private)
    assert _hf_energy(public_b.images) > 0.02


def test_shift_leaves_private_reference_eval_unchanged() -> None:
    for split in ("private", "reference", "eval"):
        fingerprints = {
            SyntheticFaces(shift=s).load(split, n=8).fingerprint()
            for s in ("both", "attributes", "texture", "none")
        }
        assert len(fingerprints) == 1


def test_check_disjoint_catches_synthetic_duplicate() -> None:
    private = load_split("synthetic-faces", "private", n=6)
    copy = private.take([2, 3])
    copy.split, copy.ids = "eval", ["x-eval-1", "x-eval-2"]
    with pytest.raises(Exception, match="'private' and 'eval' share 2 identical image"):
        check_disjoint({"private": private, "eval": copy})


def test_coords_span_unit_square() -> None:
    u, v = coords(4)
    assert u.shape == (1, 4, 4) and np.allclose(u[0, 0], [-0.75, -0.25, 0.25, 0.75])
    assert np.allclose(v[0, :, 0], [-0.75, -0.25, 0.25, 0.75])


def test_face_attributes_visible_at_32_to_a_linear_probe() -> None:
    """A ridge classifier on 16x16-pooled pixels (trained on eval, tested on reference) beats
    the majority class clearly for every face attribute: they are visible at low resolution."""
    train = load_split("synthetic-faces", "eval", n=1200, resolution=32)
    test = load_split("synthetic-faces", "reference", n=400, resolution=32)

    def features(split):
        x = split.images.astype(np.float32) / 255
        x = x.reshape(len(x), 3, 16, 2, 16, 2).mean(axis=(3, 5)).reshape(len(x), -1)
        return np.hstack([x, np.ones((len(x), 1), np.float32)])

    x_train, x_test = features(train), features(test)
    gram = x_train.T @ x_train + np.eye(x_train.shape[1], dtype=np.float32)
    for attribute, labels in train.attributes.items():
        k = len(train.attribute_schema[attribute])
        weights = np.linalg.solve(gram, x_train.T @ np.eye(k, dtype=np.float32)[labels])
        accuracy = (np.argmax(x_test @ weights, axis=1) == test.attributes[attribute]).mean()
        majority = np.bincount(test.attributes[attribute], minlength=k).max() / len(test)
        assert accuracy > majority + 0.12, (attribute, accuracy, majority)
