"""The ncnn weight reader on small networks written here: blob tags, padding, refusals."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from isoeps.errors import DataError
from isoeps.models.ncnn_weights import FP16_TAG, FP32_TAG, read_convolutions, read_param


def _write(folder: Path, layers: list[str], blobs: list[bytes]) -> tuple[Path, Path]:
    param, weights = folder / "net.param", folder / "net.bin"
    param.write_text("7767517\n" + f"{len(layers)} {len(layers)}\n" + "\n".join(layers) + "\n")
    weights.write_bytes(b"".join(blobs))
    return param, weights


def _fp16(values: np.ndarray) -> bytes:
    raw = struct.pack("<I", FP16_TAG) + values.astype("<f2").tobytes()
    return raw + b"\0" * (-len(raw) % 4)  # ncnn pads float16 blobs to 4 bytes


def _fp32(values: np.ndarray, *, tag: bool) -> bytes:
    return (struct.pack("<I", FP32_TAG) if tag else b"") + values.astype("<f4").tobytes()


def _two_convs(folder: Path) -> tuple[Path, Path, list[np.ndarray]]:
    """3 -> 1 channels by a 1x1 (3 float16 weights: a padded blob), then 1 -> 2 by a 3x3."""
    rng = np.random.default_rng(0)
    w1, b1 = rng.normal(size=(1, 3, 1, 1)), rng.normal(size=1)
    w2, b2 = rng.normal(size=(2, 1, 3, 3)), rng.normal(size=2)
    layers = [
        "Input            in   0 1 data",
        "Convolution      c1   1 1 data a 0=1 1=1 5=1 6=3",
        "Convolution      c2   1 1 a output 0=2 1=3 4=1 5=1 6=18 9=2 -23310=1,2.0e-01",
    ]
    blobs = [_fp16(w1.ravel()), _fp32(b1, tag=False), _fp32(w2.ravel(), tag=True)]
    blobs.append(_fp32(b2, tag=False))
    param, weights = _write(folder, layers, blobs)
    return param, weights, [w1, b1, w2, b2]


def test_reads_fp16_and_fp32_blobs_in_graph_order(tmp_path: Path) -> None:
    param, weights, (w1, b1, w2, b2) = _two_convs(tmp_path)
    convs = read_convolutions(param=param, weights=weights)
    assert [c.name for c in convs] == ["c1", "c2"]
    np.testing.assert_array_equal(convs[0].weight.numpy(), w1.astype(np.float16))
    np.testing.assert_array_equal(convs[0].bias.numpy(), b1.astype(np.float32))
    np.testing.assert_array_equal(convs[1].weight.numpy(), w2.astype(np.float32))
    np.testing.assert_array_equal(convs[1].bias.numpy(), b2.astype(np.float32))
    assert read_param(param)[2].params[-23310] == "1,2.0e-01"


def test_matches_ncnn_running_the_same_files(tmp_path: Path) -> None:
    ncnn = pytest.importorskip("ncnn")
    param, weights, _ = _two_convs(tmp_path)
    c1, c2 = read_convolutions(param=param, weights=weights)
    image = np.random.default_rng(1).random((3, 5, 6), dtype=np.float32)
    x = torch.nn.functional.conv2d(torch.from_numpy(image)[None], c1.weight, c1.bias)
    x = torch.nn.functional.conv2d(x, c2.weight, c2.bias, padding=1)
    expected = torch.nn.functional.leaky_relu(x, 0.2)[0].numpy()
    net = ncnn.Net()
    net.opt.use_fp16_storage = net.opt.use_fp16_arithmetic = net.opt.use_fp16_packed = False
    assert net.load_param(str(param)) == 0 and net.load_model(str(weights)) == 0
    extractor = net.create_extractor()
    extractor.input("data", ncnn.Mat(image))
    _, out = extractor.extract("output")
    np.testing.assert_allclose(np.array(out), expected, atol=1e-5)


def test_left_over_bytes_are_an_error(tmp_path: Path) -> None:
    param, weights, _ = _two_convs(tmp_path)
    weights.write_bytes(weights.read_bytes() + b"\0" * 8)
    with pytest.raises(DataError, match="8 bytes left after the last layer"):
        read_convolutions(param=param, weights=weights)


@pytest.mark.parametrize(
    ("layer", "blob", "message"),
    [
        ("PReLU p 1 1 data output 0=3", b"", r"PReLU\) reads weights unknown here"),
        ("Convolution c 1 1 data output 0=1 1=3 3=2 4=1 6=27", b"", "strided"),
        ("Convolution c 1 1 data output 0=1 1=1 6=3", struct.pack("<I", 0x000D4B38), "int8"),
    ],
)
def test_layers_it_cannot_read_are_refused(tmp_path, layer, blob, message) -> None:
    param, weights = _write(tmp_path, ["Input in 0 1 data", layer], [blob + b"\0" * 16])
    with pytest.raises(DataError, match=message):
        read_convolutions(param=param, weights=weights)


def test_not_a_param_file(tmp_path: Path) -> None:
    (tmp_path / "x.param").write_text("hello\n")
    with pytest.raises(DataError, match="not an ncnn .param file"):
        read_param(tmp_path / "x.param")
