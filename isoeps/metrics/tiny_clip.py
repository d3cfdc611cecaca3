"""``tiny-clip-eval``: a small open_clip model trained here, contrastively, on the EVAL split.

No OpenAI CLIP weights can be had offline, so the embedded CLIP score uses this evaluator.
It is trained on the eval split, which no generator sees (an evaluator trained on the
generators' public data would share their prior). The trained model is stored as an open_clip
``local-dir`` folder under ``<cache>/evaluators/tiny-clip-eval-<key>``, where the key hashes
the eval split's fingerprint and the training config; a file lock makes parallel cells train
it once. Its backbone name is ``tiny-clip-eval@<key>`` and every value it produces carries
``details["approximate"]``, so it is never mistaken for an OpenAI CLIP score.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import numpy as np
from pydantic import ConfigDict
from pydantic.dataclasses import dataclass

from isoeps.cache import cache_path, content_key, file_lock
from isoeps.cache_bundle import seed_from_shipped
from isoeps.datasets.base import ImageSplit
from isoeps.errors import ConfigError
from isoeps.log import get_logger, progress
from isoeps.metrics.backbones import OpenClipBackbone
from isoeps.metrics.preprocess import check_images, resize_torch

log = get_logger(__name__)

#: Bump when the training recipe changes, so stale cached evaluators are not reused.
RECIPE_VERSION = 1
APPROXIMATE_LABEL = "offline evaluator trained on the eval split, not OpenAI CLIP"
MEAN = (0.5, 0.5, 0.5)
STD = (0.5, 0.5, 0.5)
RESIZE_MODE = "torch-bicubic-aa"


@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class TinyClipConfig:
    """Architecture and training recipe. The defaults train in a few minutes on 2 CPU cores.
    Validated (a dataclass of pydantic's), so an unknown field is an error naming it."""

    image_size: int = 32
    patch_size: int = 4
    width: int = 128
    layers: int = 3
    text_width: int = 128
    text_layers: int = 3
    head_width: int = 32
    context_length: int = 32
    embed_dim: int = 128
    steps: int = 400
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.1
    seed: int = 0

    def model_cfg(self) -> dict[str, Any]:
        """The open_clip model config (``open_clip_config.json``'s ``model_cfg``)."""
        return {
            "embed_dim": self.embed_dim,
            "vision_cfg": {
                "image_size": self.image_size,
                "patch_size": self.patch_size,
                "width": self.width,
                "layers": self.layers,
                "head_width": self.head_width,
            },
            "text_cfg": {
                "context_length": self.context_length,
                "vocab_size": 49408,
                "width": self.text_width,
                "heads": max(1, self.text_width // self.head_width),
                "layers": self.text_layers,
            },
        }


def prepare_images(images: np.ndarray, *, size: int, device: str):
    """uint8 NCHW -> the normalised float batch the tiny model sees (train and eval alike).

    Args:
        images: uint8 ``(N, 3, H, W)``.
        size: the model's input side, in pixels.
        device: where the batch is placed.

    Returns:
        float tensor ``(N, 3, size, size)``, normalised with the model's mean and std.
    """
    import torch

    batch = torch.from_numpy(images).to(device).float() / 255.0
    batch = resize_torch(batch, size=size, mode=RESIZE_MODE).clamp(0, 1)
    mean = torch.tensor(MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=device).view(1, 3, 1, 1)
    return (batch - mean) / std


def train_tiny_clip(eval_split: ImageSplit, *, config: TinyClipConfig, device: str = "cpu"):
    """Train the evaluator contrastively on (image, random caption of that image) pairs.

    Args:
        eval_split: the captioned split it is trained on.
        config: the model, the optimiser, the steps and the seed.
        device: where training runs.

    Returns:
        The open_clip model, in eval mode.
    """
    import open_clip
    import torch
    import torch.nn.functional as F

    generator = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    model = open_clip.CLIP(**config.model_cfg()).to(device).train()
    tokenizer = open_clip.tokenizer.SimpleTokenizer(context_length=config.context_length)
    optimiser = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    warmup = max(1, config.steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser,
        lambda step: (
            min(1.0, (step + 1) / warmup) * 0.5 * (1 + np.cos(np.pi * step / config.steps))
        ),
    )
    rng = np.random.default_rng(config.seed)
    n = len(eval_split)
    batch_size = min(config.batch_size, n)
    for _ in progress(range(config.steps), desc="tiny-clip-eval", leave=False):
        idx = rng.choice(n, size=batch_size, replace=False)
        captions = [eval_split.captions[i][rng.integers(len(eval_split.captions[i]))] for i in idx]
        images = prepare_images(eval_split.images[idx], size=config.image_size, device=device)
        if torch.rand((), generator=generator) < 0.5:
            images = images.flip(-1)
        tokens = tokenizer(captions).to(device)
        image_features, text_features, logit_scale = model(images, tokens)
        logits = logit_scale * image_features @ text_features.T
        # Duplicate captions are common in templated data: treat equal captions as positives.
        same = torch.tensor([[a == b for b in captions] for a in captions], device=device).float()
        targets = same / same.sum(dim=1, keepdim=True)
        loss = (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets.T)) / 2
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, np.log(100))
    log.info(
        "tiny-clip-eval trained for %d steps on %d eval images (last loss %.3f)",
        config.steps,
        n,
        loss.item(),
    )
    return model.eval()


def tiny_clip_folder(eval_split: ImageSplit, *, config: TinyClipConfig, device: str = "cpu"):
    """The cached model folder (trained on first use) and its key.

    Args:
        eval_split: the captioned split the model is trained on.
        config: the evaluator's config; part of the cache key.
        device: where the model is trained, on a miss.

    Returns:
        ``(folder, key)``: the folder holding the open_clip weights and config, and the key.
    """
    import torch

    key = content_key(
        {"eval": eval_split.fingerprint(), "config": asdict(config), "recipe": RECIPE_VERSION}
    )
    folder = cache_path("evaluators", f"tiny-clip-eval-{key}")
    with file_lock(folder):
        weights = folder / "open_clip_pytorch_model.bin"
        if not weights.is_file():
            seed_from_shipped("evaluators", folder.name)
        if not weights.is_file():
            model = train_tiny_clip(eval_split, config=config, device=device)
            folder.mkdir(parents=True, exist_ok=True)
            meta = {
                "model_cfg": config.model_cfg(),
                "preprocess_cfg": {"size": config.image_size, "mean": MEAN, "std": STD},
                "isoeps": {
                    "trained_on": f"{eval_split.dataset}/{eval_split.split}",
                    "eval_fingerprint": eval_split.fingerprint(),
                    "n_train": len(eval_split),
                    "config": asdict(config),
                    "note": APPROXIMATE_LABEL,
                },
            }
            (folder / "open_clip_config.json").write_text(json.dumps(meta, indent=2))
            partial = folder / "weights.partial"
            torch.save({k: v.cpu() for k, v in model.state_dict().items()}, partial)
            partial.replace(weights)
    return folder, key


class TinyClipBackbone(OpenClipBackbone):
    """The offline CLIP evaluator; needs the eval split to train (once, then cached)."""

    def __init__(
        self,
        *,
        device: str = "cpu",
        eval_split: ImageSplit | None = None,
        config: TinyClipConfig | dict[str, Any] | None = None,
    ) -> None:
        if eval_split is None:
            raise ConfigError(
                "backbone 'tiny-clip-eval' is trained on the eval split, but none was given "
                "(MetricInputs.eval, or --eval / a dataset --real on the CLI)"
            )
        if eval_split.captions is None or not len(eval_split):
            raise ConfigError(
                f"tiny-clip-eval: eval split {eval_split.dataset}/{eval_split.split} is empty"
            )
        if isinstance(config, dict):
            config = TinyClipConfig(**config)
        self.config = config or TinyClipConfig()
        folder, key = tiny_clip_folder(eval_split, config=self.config, device=str(device))
        super().__init__(
            arch="tiny-clip-eval", path=folder, device=device, name=f"tiny-clip-eval@{key}"
        )
        self.resize_mode = RESIZE_MODE
        self.labels = {"approximate": APPROXIMATE_LABEL, "evaluator_trained_on": eval_split.dataset}

    def _prepare(self, images: np.ndarray):
        check_images(images, what=self.name)
        return prepare_images(images, size=self.config.image_size, device=self.device)
