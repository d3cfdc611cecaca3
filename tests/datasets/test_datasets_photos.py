"""skimage-photos (public-only crops of scikit-image's photographs) and the gray options."""

from __future__ import annotations

import numpy as np
import pytest

from isoeps.datasets import get_source, load_split
from isoeps.datasets.base import luma_gray
from isoeps.datasets.photos import PHOTOS, load_photo
from isoeps.errors import ConfigError

# Fingerprints of load_split(name, split, resolution=32, n=20, seed=3), computed on the code
# before the grayscale option existed: the default output must stay bit-identical.
SYNTHETIC_FINGERPRINTS = {
    ("synthetic-faces", "private"): "3f500a360b043a43",
    ("synthetic-faces", "public"): "c5ef1940f5cf6611",
    ("synthetic-scenes", "private"): "d5c8fc849b3dc267",
    ("synthetic-scenes", "public"): "85652232f8d7ec85",
}


def test_every_listed_photo_ships_in_the_wheel() -> None:
    for name in PHOTOS:
        photo = load_photo(name)
        assert photo.mode == "RGB" and min(photo.size) >= 100, name


def test_public_crops_are_seeded_and_prefix_stable() -> None:
    source = get_source("skimage-photos")
    a = source.load("public", resolution=32, n=40, seed=1)
    assert a.images.shape == (40, 3, 32, 32) and a.captions[0] == ["a photo"]
    assert len(set(a.pixel_hashes())) == 40 and a.images.std() > 20
    assert a.fingerprint() == source.load("public", resolution=32, n=40, seed=1).fingerprint()
    longer = source.load("public", resolution=32, n=60, seed=1)
    np.testing.assert_array_equal(longer.images[:40], a.images)
    other = source.load("public", resolution=32, n=40, seed=2)
    assert other.fingerprint() != a.fingerprint()
    assert set(a.attributes["photo"].tolist()) > {0}  # several photos are used
    assert a.info["resize_mode"].startswith("center-crop-bicubic")


def test_public_only_and_options_checked() -> None:
    with pytest.raises(ConfigError, match="no private split.*only out-of-domain public"):
        load_split("skimage-photos", "private", n=2)
    with pytest.raises(ConfigError, match="photos: unknown"):
        get_source("skimage-photos", options={"photos": ["lena"]})
    with pytest.raises(ConfigError, match="min_crop"):
        get_source("skimage-photos", options={"min_crop": 0.9, "max_crop": 0.5})


def test_photo_subset_and_grayscale() -> None:
    gray = load_split(
        "skimage-photos",
        "public",
        n=12,
        resolution=28,
        options={"photos": ["astronaut", "coffee"], "grayscale": True},
    )
    assert gray.attribute_schema == {"photo": ["astronaut", "coffee"]}
    assert (gray.images[:, 0] == gray.images[:, 2]).all() and gray.info["channels"] == 1
    colour = load_split(
        "skimage-photos", "public", n=12, resolution=28, options={"photos": ["astronaut", "coffee"]}
    )
    np.testing.assert_array_equal(gray.images, luma_gray(colour.images))
    assert (colour.images[:, 0] != colour.images[:, 2]).any()


def test_luma_is_itu_601() -> None:
    images = np.zeros((1, 3, 1, 3), np.uint8)
    images[0, :, 0, 0] = (255, 0, 0)
    images[0, :, 0, 1] = (0, 255, 0)
    images[0, :, 0, 2] = (10, 20, 30)
    out = luma_gray(images)
    assert out[0, :, 0, 0].tolist() == [76] * 3  # round(0.299 * 255)
    assert out[0, 0, 0, 1] == 150 and out[0, 0, 0, 2] == round(0.299 * 10 + 0.587 * 20 + 0.114 * 30)


@pytest.mark.parametrize(("name", "split"), sorted(SYNTHETIC_FINGERPRINTS))
def test_synthetic_default_output_unchanged(name: str, split: str) -> None:
    loaded = load_split(name, split, resolution=32, n=20, seed=3)
    assert loaded.fingerprint() == SYNTHETIC_FINGERPRINTS[(name, split)]
    assert "channels" not in loaded.info


def test_synthetic_grayscale_option() -> None:
    colour = load_split("synthetic-scenes", "private", resolution=32, n=20, seed=3)
    gray = load_split(
        "synthetic-scenes", "private", resolution=32, n=20, seed=3, options={"grayscale": True}
    )
    np.testing.assert_array_equal(gray.images, luma_gray(colour.images))
    assert gray.info["channels"] == 1 and gray.captions == colour.captions
    assert gray.fingerprint() != colour.fingerprint()
