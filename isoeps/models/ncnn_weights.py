"""The convolution weights of an ncnn network (``.param`` + ``.bin``), read without ncnn.

ncnn stores a network as a text graph (``.param``) and one flat weight file (``.bin``) that
the layers read in graph order. A ``Convolution`` layer reads its weights as one tagged blob
(a 4-byte tag, then the values: ``0x01306B47`` = float16, padded to 4 bytes; ``0`` = float32)
and then, with ``5=1``, its bias as raw float32 with no tag. Nothing else in the file marks
where a layer starts, so the reader checks that every byte is consumed and refuses any layer
that would read weights it does not know how to parse, rather than misalign silently.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from isoeps.errors import DataError

#: The first line of every ncnn ``.param`` file.
PARAM_MAGIC = "7767517"
#: The tag of a float16 weight blob (ncnn's ``ModelBinFromDataReader``).
FP16_TAG = 0x01306B47
#: The tag of a raw float32 weight blob.
FP32_TAG = 0
#: Layers that read nothing from the ``.bin``: a graph of these plus ``Convolution`` parses.
WEIGHTLESS_LAYERS = frozenset(
    {"Input", "Split", "Concat", "Eltwise", "BinaryOp", "Interp", "PixelShuffle", "Noop"}
)


@dataclass(frozen=True)
class NcnnLayer:
    """One line of a ``.param`` graph: its type, name and ``key=value`` parameters."""

    kind: str
    name: str
    params: dict[int, str]


@dataclass(frozen=True)
class NcnnConv:
    """One ``Convolution`` layer's weights as torch tensors (float32)."""

    name: str
    weight: torch.Tensor  # (out, in, kernel_h, kernel_w)
    bias: torch.Tensor | None


def read_param(path: Path) -> list[NcnnLayer]:
    """The layers of an ncnn ``.param`` file, in graph order.

    Args:
        path: the ``.param`` file.

    Returns:
        One :class:`NcnnLayer` per layer line.

    Raises:
        DataError: the file does not start with ncnn's magic number or its layer count is wrong.
    """
    lines = [line.split() for line in Path(path).read_text().splitlines() if line.strip()]
    if not lines or lines[0] != [PARAM_MAGIC]:
        raise DataError(f"{path}: not an ncnn .param file (no magic {PARAM_MAGIC} first)")
    declared = int(lines[1][0])
    layers = []
    for fields in lines[2:]:
        inputs, outputs = int(fields[2]), int(fields[3])
        pairs = (item.split("=", 1) for item in fields[4 + inputs + outputs :])
        layers.append(NcnnLayer(fields[0], fields[1], {int(k): v for k, v in pairs}))
    if len(layers) != declared:
        raise DataError(f"{path}: declares {declared} layers but holds {len(layers)}")
    return layers


def read_convolutions(*, param: Path, weights: Path) -> list[NcnnConv]:
    """Every ``Convolution`` layer's weights, in graph order (the order of the ``.bin``).

    Args:
        param: the ``.param`` graph.
        weights: the ``.bin`` weight file.

    Returns:
        One :class:`NcnnConv` per convolution.

    Raises:
        DataError: a layer this reader cannot parse (one that reads other weights, an int8 or
            quantised blob, a stride, dilation or padding other than a same-size 3x3-style
            convolution), or the ``.bin`` is not consumed exactly.
    """
    data = Path(weights).read_bytes()
    offset, convs = 0, []
    for layer in read_param(param):
        if layer.kind in WEIGHTLESS_LAYERS:
            continue
        if layer.kind != "Convolution":
            raise DataError(
                f"{param}: layer {layer.name} ({layer.kind}) reads weights unknown here"
            )
        shape, has_bias = _conv_geometry(layer, param)
        weight, offset = _tagged_blob(data, offset, count=int(np.prod(shape)), where=layer.name)
        bias = None
        if has_bias:
            bias = np.frombuffer(data, dtype="<f4", count=shape[0], offset=offset).copy()
            offset += 4 * shape[0]
        convs.append(
            NcnnConv(
                name=layer.name,
                weight=torch.from_numpy(weight.reshape(shape)),
                bias=None if bias is None else torch.from_numpy(bias),
            )
        )
    if offset != len(data):
        raise DataError(f"{weights}: {len(data) - offset} bytes left after the last layer")
    return convs


def _conv_geometry(layer: NcnnLayer, param: Path) -> tuple[tuple[int, int, int, int], bool]:
    """``(out, in, kh, kw)`` and whether there is a bias; refuses what the port cannot run."""
    p = {key: int(float(value)) for key, value in layer.params.items() if key >= 0}
    out, kw = p[0], p.get(1, 1)
    kh = p.get(11, kw)
    same_size = (
        p.get(2, 1) == p.get(12, p.get(2, 1)) == 1  # dilation
        and p.get(3, 1) == p.get(13, p.get(3, 1)) == 1  # stride
        and p.get(4, 0) == kw // 2
        and p.get(14, p.get(4, 0)) == kh // 2
        and p.get(15, p.get(4, 0)) == kw // 2
        and p.get(16, p.get(14, p.get(4, 0))) == kh // 2
    )
    if not same_size or p.get(8, 0) or p.get(19, 0):
        raise DataError(
            f"{param}: convolution {layer.name} is strided, dilated, int8, dynamic or not "
            f"same-size padded ({layer.params}); only plain same-size convolutions are read"
        )
    count = p[6]
    if count % (out * kh * kw):
        raise DataError(f"{param}: convolution {layer.name}: {count} weights for {out} outputs")
    return (out, count // (out * kh * kw), kh, kw), bool(p.get(5, 0))


def _tagged_blob(data: bytes, offset: int, *, count: int, where: str) -> tuple[np.ndarray, int]:
    """``count`` float32 values of one tagged blob at ``offset``, and the offset after it."""
    if offset + 4 > len(data):
        raise DataError(f"ncnn weights end before layer {where}")
    (tag,) = struct.unpack_from("<I", data, offset)
    offset += 4
    if tag == FP16_TAG:
        values = np.frombuffer(data, dtype="<f2", count=count, offset=offset)
        # float16 blobs are padded to a multiple of 4 bytes
        return values.astype(np.float32), offset + (2 * count + 3) // 4 * 4
    if tag == FP32_TAG:
        values = np.frombuffer(data, dtype="<f4", count=count, offset=offset)
        return values.copy(), offset + 4 * count
    raise DataError(f"ncnn weights of layer {where}: blob tag {tag:#010x} (int8 or quantised)")
