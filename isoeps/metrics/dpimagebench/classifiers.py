"""DPImageBench's three utility classifiers: ResNet, WideResNet and ResNeXt.

Ported from 2019ChenGong/DPImageBench at 565f8d7 (MIT License, Copyright (c) 2024 Chen):
``evaluation/classifier/resnet.py``, ``evaluation/classifier/wrn.py`` and
``evaluation/classifier/resnext.py``. The layers, their order, their initialisation and the
module attribute names are theirs (so a state dict of theirs loads here); only the argument
names are snake_case, and the deprecated ``init.kaiming_normal`` is its in-place successor
``init.kaiming_normal_`` (the same draw).

:data:`ARCHITECTURES` holds the hyper-parameters ``evaluation/evaluator.py`` (``cal_acc``)
builds them with: the "mnist" recipe (every dataset whose name has no "cifar") leaves the
constructors' defaults (ResNet-110, WRN-40-4 with dropout 0.3, ResNeXt-29 8x64d); the "cifar"
recipe builds ResNet-164, WRN-28-10 with dropout 0.3 and ResNeXt-28 (cardinality 8, widen 10).
DPImageBench passes ``dropRate=0.3`` to ResNeXt too, which ignores it.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn import init

#: DPImageBench's classifier order; above 32 px it trains the first two only.
CLASSIFIERS: tuple[str, ...] = ("resnet", "wrn", "resnext")

#: Constructor arguments per recipe, as ``cal_acc`` passes them (beyond in_c, img_size, classes).
ARCHITECTURES: dict[str, dict[str, dict[str, Any]]] = {
    "mnist": {
        "resnet": {"depth": 110, "block_name": "BasicBlock"},
        "wrn": {"depth": 40, "widen_factor": 4, "drop_rate": 0.3},
        "resnext": {"cardinality": 8, "depth": 29, "widen_factor": 4},
    },
    "cifar": {
        "resnet": {"depth": 164, "block_name": "BasicBlock"},
        "wrn": {"depth": 28, "widen_factor": 10, "drop_rate": 0.3},
        "resnext": {"cardinality": 8, "depth": 28, "widen_factor": 10},
    },
}


def _conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


class ResNetBasicBlock(nn.Module):
    """``resnet.py``'s ``BasicBlock``."""

    expansion = 1

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.conv1 = _conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += residual
        return self.relu(out)


class ResNetBottleneck(nn.Module):
    """``resnet.py``'s ``Bottleneck``."""

    expansion = 4

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out += residual
        return self.relu(out)


class ResNet(nn.Module):
    """``resnet.py``'s CIFAR ResNet: three stages of 16/32/64 planes, ``(depth - 2) / 6``
    basic blocks (or ``/ 9`` bottlenecks) each, average pooling over ``img_size // 4``."""

    def __init__(
        self,
        *,
        depth: int = 110,
        in_c: int = 3,
        img_size: int = 32,
        num_classes: int = 1000,
        block_name: str = "BasicBlock",
    ) -> None:
        super().__init__()
        if block_name.lower() == "basicblock":
            if (depth - 2) % 6:
                raise ValueError(f"ResNet with BasicBlock needs depth 6n+2, got {depth}")
            n, block = (depth - 2) // 6, ResNetBasicBlock
        elif block_name.lower() == "bottleneck":
            if (depth - 2) % 9:
                raise ValueError(f"ResNet with Bottleneck needs depth 9n+2, got {depth}")
            n, block = (depth - 2) // 9, ResNetBottleneck
        else:
            raise ValueError(f"block_name must be BasicBlock or Bottleneck, got {block_name!r}")
        self.inplanes = 16
        self.conv1 = nn.Conv2d(in_c, 16, kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(block, 16, n)
        self.layer2 = self._make_layer(block, 32, n, stride=2)
        self.layer3 = self._make_layer(block, 64, n, stride=2)
        self.avgpool = nn.AvgPool2d(img_size // 4)
        self.fc = nn.Linear(64 * block.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                m.weight.data.normal_(0, math.sqrt(2.0 / fan_out))
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.data.fill_(1)
                m.bias.data.zero_()

    def _make_layer(self, block: type, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(
                    self.inplanes,
                    planes * block.expansion,
                    kernel_size=1,
                    stride=stride,
                    bias=False,
                ),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = self.avgpool(x)
        return self.fc(x.view(x.size(0), -1))


class WideBasicBlock(nn.Module):
    """``wrn.py``'s pre-activation ``BasicBlock`` with dropout between its convolutions."""

    def __init__(self, in_planes: int, out_planes: int, stride: int, drop_rate: float = 0.0):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(
            in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False
        )
        self.bn2 = nn.BatchNorm2d(out_planes)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(
            out_planes, out_planes, kernel_size=3, stride=1, padding=1, bias=False
        )
        self.droprate = drop_rate
        self.equalInOut = in_planes == out_planes
        self.convShortcut = (
            None
            if self.equalInOut
            else nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # As in wrn.py: a widening block feeds the activated input to both paths; an equal
        # one keeps the raw input for the shortcut.
        if self.equalInOut:
            out = self.relu1(self.bn1(x))
        else:
            x = self.relu1(self.bn1(x))
            out = x
        out = self.relu2(self.bn2(self.conv1(out)))
        if self.droprate > 0:
            out = F.dropout(out, p=self.droprate, training=self.training)
        out = self.conv2(out)
        return torch.add(x if self.equalInOut else self.convShortcut(x), out)


class NetworkBlock(nn.Module):
    """``wrn.py``'s stage of ``nb_layers`` blocks, the first one striding."""

    def __init__(
        self,
        nb_layers: int,
        in_planes: int,
        out_planes: int,
        stride: int,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.layer = nn.Sequential(
            *[
                WideBasicBlock(
                    in_planes if i == 0 else out_planes,
                    out_planes,
                    stride if i == 0 else 1,
                    drop_rate,
                )
                for i in range(int(nb_layers))
            ]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


class WideResNet(nn.Module):
    """``wrn.py``'s WRN-``depth``-``widen_factor``: ``(depth - 4) / 6`` blocks per stage."""

    def __init__(
        self,
        *,
        in_c: int = 3,
        img_size: int = 32,
        num_classes: int = 10,
        depth: int = 40,
        widen_factor: int = 4,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        channels = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        if (depth - 4) % 6:
            raise ValueError(f"WideResNet needs depth 6n+4, got {depth}")
        n = (depth - 4) // 6
        self.img_size = img_size
        self.conv1 = nn.Conv2d(in_c, channels[0], kernel_size=3, stride=1, padding=1, bias=False)
        self.block1 = NetworkBlock(n, channels[0], channels[1], 1, drop_rate)
        self.block2 = NetworkBlock(n, channels[1], channels[2], 2, drop_rate)
        self.block3 = NetworkBlock(n, channels[2], channels[3], 2, drop_rate)
        self.bn1 = nn.BatchNorm2d(channels[3])
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(channels[3], num_classes)
        self.nChannels = channels[3]
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.data.fill_(1)
                m.bias.data.zero_()
            elif isinstance(m, nn.Linear):
                m.bias.data.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block3(self.block2(self.block1(self.conv1(x))))
        out = self.relu(self.bn1(out))
        out = F.avg_pool2d(out, self.img_size // 4)
        return self.fc(out.view(-1, self.nChannels))


class ResNeXtBottleneck(nn.Module):
    """``resnext.py``'s bottleneck (type C): reduce, grouped 3x3, expand, plus a shortcut."""

    def __init__(
        self, in_channels: int, out_channels: int, stride: int, cardinality: int, widen_factor: int
    ) -> None:
        super().__init__()
        width = cardinality * out_channels // widen_factor
        self.conv_reduce = nn.Conv2d(in_channels, width, kernel_size=1, bias=False)
        self.bn_reduce = nn.BatchNorm2d(width)
        self.conv_conv = nn.Conv2d(
            width, width, kernel_size=3, stride=stride, padding=1, groups=cardinality, bias=False
        )
        self.bn = nn.BatchNorm2d(width)
        self.conv_expand = nn.Conv2d(width, out_channels, kernel_size=1, bias=False)
        self.bn_expand = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Sequential()
        if in_channels != out_channels:
            self.shortcut.add_module(
                "shortcut_conv",
                nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
            )
            self.shortcut.add_module("shortcut_bn", nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bottleneck = F.relu(self.bn_reduce(self.conv_reduce(x)), inplace=True)
        bottleneck = F.relu(self.bn(self.conv_conv(bottleneck)), inplace=True)
        bottleneck = self.bn_expand(self.conv_expand(bottleneck))
        return F.relu(self.shortcut(x) + bottleneck, inplace=True)


class ResNeXt(nn.Module):
    """``resnext.py``'s CIFAR ResNeXt: stages of 64·w, 128·w, 256·w channels (w the widen
    factor), ``(depth - 2) // 9`` bottlenecks each."""

    def __init__(
        self,
        *,
        in_c: int = 3,
        img_size: int = 32,
        cardinality: int = 8,
        depth: int = 29,
        num_classes: int = 10,
        widen_factor: int = 4,
    ) -> None:
        super().__init__()
        self.cardinality = cardinality
        self.depth = depth
        self.block_depth = (depth - 2) // 9
        self.widen_factor = widen_factor
        self.num_classes = num_classes
        self.output_size = 64
        self.img_size = img_size
        self.stages = [64, 64 * widen_factor, 128 * widen_factor, 256 * widen_factor]
        self.conv_1_3x3 = nn.Conv2d(in_c, 64, 3, 1, 1, bias=False)
        self.bn_1 = nn.BatchNorm2d(64)
        self.stage_1 = self.block("stage_1", self.stages[0], self.stages[1], 1)
        self.stage_2 = self.block("stage_2", self.stages[1], self.stages[2], 2)
        self.stage_3 = self.block("stage_3", self.stages[2], self.stages[3], 2)
        self.classifier = nn.Linear(256 * widen_factor, num_classes)
        init.kaiming_normal_(self.classifier.weight)
        # resnext.py initialises by state-dict key name, in key order; kept as is (the
        # classifier's weight matches neither "conv" nor "bn", so keeps the draw above).
        state = self.state_dict()
        for key in state:
            if key.split(".")[-1] == "weight":
                if "conv" in key:
                    init.kaiming_normal_(state[key], mode="fan_out")
                if "bn" in key:
                    state[key][...] = 1
            elif key.split(".")[-1] == "bias":
                state[key][...] = 0

    def block(
        self, name: str, in_channels: int, out_channels: int, pool_stride: int = 2
    ) -> nn.Sequential:
        """``block_depth`` bottlenecks, the first changing width and striding.

        Args:
            name: the prefix of the bottlenecks' module names.
            in_channels: the block's input width.
            out_channels: its output width.
            pool_stride: the first bottleneck's stride.

        Returns:
            The block.
        """
        block = nn.Sequential()
        for index in range(self.block_depth):
            first = index == 0
            block.add_module(
                f"{name}_bottleneck_{index}",
                ResNeXtBottleneck(
                    in_channels if first else out_channels,
                    out_channels,
                    pool_stride if first else 1,
                    self.cardinality,
                    self.widen_factor,
                ),
            )
        return block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn_1(self.conv_1_3x3(x)), inplace=True)
        x = self.stage_3(self.stage_2(self.stage_1(x)))
        x = F.avg_pool2d(x, self.img_size // 4, 1)
        return self.classifier(x.view(x.size(0), -1))


def build_classifier(
    name: str, *, recipe: str, in_channels: int, img_size: int, num_classes: int
) -> nn.Module:
    """One of DPImageBench's classifiers, with the hyper-parameters its recipe uses.

    Args:
        name: "resnet", "wrn" or "resnext".
        recipe: "mnist" or "cifar" (the branch of ``cal_acc``).
        in_channels: 1 for grayscale data, 3 for colour.
        img_size: the square input side (the pooling window is ``img_size // 4``).
        num_classes: the width of the logits.

    Returns:
        A freshly initialised module (seed the torch generator before calling).
    """
    if recipe not in ARCHITECTURES:
        raise ValueError(f"unknown recipe {recipe!r}; expected one of {sorted(ARCHITECTURES)}")
    if name not in ARCHITECTURES[recipe]:
        raise ValueError(f"unknown classifier {name!r}; expected one of {list(CLASSIFIERS)}")
    if img_size % 4:
        raise ValueError(f"DPImageBench's classifiers pool over img_size // 4; got {img_size}")
    kwargs = dict(
        ARCHITECTURES[recipe][name],
        in_c=in_channels,
        img_size=img_size,
        num_classes=num_classes,
    )
    constructor = {"resnet": ResNet, "wrn": WideResNet, "resnext": ResNeXt}[name]
    return constructor(**kwargs)
