"""A small multi-head CNN classifier, shared by the attribute and utility metrics.

One convolutional trunk and one linear head per attribute. Inputs are resized to
``config.size`` (antialiased bilinear) and scaled to [-1, 1]. GroupNorm rather than BatchNorm,
so evaluation does not depend on batch composition.
"""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass

from isoeps.cache import cache_path, content_key, file_lock
from isoeps.cache_bundle import seed_from_shipped
from isoeps.datasets.base import ImageSplit
from isoeps.errors import ConfigError
from isoeps.log import get_logger, progress
from isoeps.metrics.preprocess import resize_torch

log = get_logger(__name__)
RECIPE_VERSION = 1


@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class ClassifierConfig:
    """The classifier's architecture and recipe (the metrics' ``classifier`` option).

    Validated (a dataclass of pydantic's): an unknown field or a bad value is an error naming
    the field. ``width`` is a multiple of 8 (GroupNorm's groups)."""

    size: int = Field(default=32, ge=4, strict=True)
    width: int = Field(default=32, ge=8, multiple_of=8, strict=True)
    steps: int = Field(default=300, ge=1, strict=True)
    batch_size: int = Field(default=128, ge=1, strict=True)
    lr: float = Field(default=2e-3, gt=0)
    seed: int = 0


def _build(schema: dict[str, int], config: ClassifierConfig):
    import torch
    from torch import nn

    w = config.width

    class MultiHead(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.trunk = nn.Sequential(
                nn.Conv2d(3, w, 3, padding=1),
                nn.GroupNorm(8, w),
                nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Conv2d(w, 2 * w, 3, padding=1),
                nn.GroupNorm(8, 2 * w),
                nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Conv2d(2 * w, 2 * w, 3, padding=1),
                nn.GroupNorm(8, 2 * w),
                nn.ReLU(),
                nn.AdaptiveAvgPool2d(1),
                nn.Flatten(),
            )
            self.heads = nn.ModuleDict({name: nn.Linear(2 * w, k) for name, k in schema.items()})

        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            h = self.trunk(x)
            return {name: head(h) for name, head in self.heads.items()}

    return MultiHead()


def _prepare(images: np.ndarray, *, size: int, device: str):
    import torch

    x = torch.from_numpy(images).to(device).float() / 127.5 - 1
    return resize_torch(x, size=size, mode="torch-bilinear-aa")


def check_labels(
    labels: dict[str, np.ndarray] | None, *, n: int, what: str
) -> dict[str, np.ndarray]:
    """Check that each attribute holds ``n`` integer labels; an empty mapping is refused.

    Args:
        labels: ``{attribute: labels}``, or None.
        n: how many labels each attribute must hold.
        what: names the data in errors.

    Returns:
        ``{attribute: int64 (n,)}``.

    Raises:
        ConfigError: ``labels`` is None or empty.
        ValueError: an attribute's labels are not ``n`` integers.
    """
    if not labels:
        raise ConfigError(f"{what}: no attributes given")
    out = {}
    for name, values in labels.items():
        values = np.asarray(values)
        if values.shape != (n,) or not np.issubdtype(values.dtype, np.integer):
            raise ValueError(
                f"{what}: attribute {name!r} must be {n} ints, got {values.dtype} {values.shape}"
            )
        out[name] = values.astype(np.int64)
    return out


def train_classifier(
    images: np.ndarray,
    labels: dict[str, np.ndarray],
    *,
    classes: dict[str, int],
    config: ClassifierConfig,
    device: str = "cpu",
):
    """Train a fresh multi-head classifier on uint8 images and integer labels.

    Args:
        images: uint8 ``(N, 3, H, W)`` training images.
        labels: ``{attribute: int (N,)}`` class indices.
        classes: ``{attribute: number of classes}``, one head each.
        config: the architecture, input size, steps, batch size, learning rate and seed.
        device: where training runs.

    Returns:
        The trained model, in eval mode.
    """
    import torch
    import torch.nn.functional as F

    torch.manual_seed(config.seed)
    model = _build(classes, config).to(device).train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=1e-4)
    rng = np.random.default_rng(config.seed)
    n = images.shape[0]
    targets = {name: torch.from_numpy(values).to(device) for name, values in labels.items()}
    for _ in progress(range(config.steps), desc="classifier", leave=False):
        idx = rng.choice(n, size=min(config.batch_size, n), replace=False)
        logits = model(_prepare(images[idx], size=config.size, device=device))
        loss = sum(F.cross_entropy(logits[name], targets[name][idx]) for name in classes)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
    return model.eval()


def predict(
    model,
    images: np.ndarray,
    *,
    config: ClassifierConfig,
    device: str = "cpu",
    batch_size: int = 256,
) -> dict[str, np.ndarray]:
    """Predicted class index per attribute.

    Args:
        model: a classifier from :func:`train_classifier`.
        images: uint8 ``(N, 3, H, W)``.
        config: the config the model was trained with (its input size).
        device: where the model runs.
        batch_size: images per forward pass.

    Returns:
        ``{attribute: int (N,)}``, the argmax of each head.
    """
    import torch

    out: dict[str, list[np.ndarray]] = {}
    with torch.inference_mode():
        for start in range(0, images.shape[0], batch_size):
            logits = model(
                _prepare(images[start : start + batch_size], size=config.size, device=device)
            )
            for name, value in logits.items():
                out.setdefault(name, []).append(value.argmax(dim=1).cpu().numpy())
    return {name: np.concatenate(chunks) for name, chunks in out.items()}


def accuracies(predicted: dict[str, np.ndarray], truth: dict[str, np.ndarray]) -> dict[str, float]:
    """The fraction of correct predictions for each attribute present in both mappings.

    Args:
        predicted: ``{attribute: predicted labels}``.
        truth: ``{attribute: true labels}``, aligned with ``predicted``.

    Returns:
        ``{attribute: accuracy}``, each in [0, 1].
    """
    return {
        name: float((predicted[name] == truth[name]).mean()) for name in predicted if name in truth
    }


def majority_rates(labels: dict[str, np.ndarray]) -> dict[str, float]:
    """Per attribute, the share of the most common class: the accuracy of a constant guess."""
    return {
        name: float(np.bincount(np.asarray(values)).max() / len(values)) if len(values) else 0.0
        for name, values in labels.items()
    }


def eval_classifier(eval_split: ImageSplit, *, config: ClassifierConfig, device: str = "cpu"):
    """The attribute classifier trained on the eval split (cached), and its cache key.

    Args:
        eval_split: the split the classifier is trained on; it must have attributes.
        config: the classifier's config; part of the cache key.
        device: where the model is trained and placed.

    Returns:
        ``(model, key)``: the classifier in eval mode and its cache key.

    Raises:
        ConfigError: the eval split has no attributes.
    """
    import torch

    if not eval_split.attributes or not eval_split.attribute_schema:
        raise ConfigError(
            f"attribute classifier: eval split {eval_split.dataset}/{eval_split.split} has no attributes"
        )
    labels = check_labels(
        eval_split.attributes, n=len(eval_split), what=f"{eval_split.dataset}/eval"
    )
    classes = {name: len(eval_split.attribute_schema[name]) for name in labels}
    key = content_key(
        {
            "eval": eval_split.fingerprint(),
            "config": asdict(config),
            "classes": classes,
            "recipe": RECIPE_VERSION,
        }
    )
    folder = cache_path("evaluators", f"attribute-classifier-{key}")
    weights = folder / "model.pt"
    with file_lock(folder):
        model = _build(classes, config).to(device)
        if not weights.is_file():
            seed_from_shipped("evaluators", folder.name)
        if weights.is_file():
            model.load_state_dict(torch.load(weights, map_location=device, weights_only=True))
            return model.eval(), key
        model = train_classifier(
            eval_split.images, labels, classes=classes, config=config, device=device
        )
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "meta.json").write_text(
            json.dumps(
                {
                    "trained_on": f"{eval_split.dataset}/{eval_split.split}",
                    "classes": classes,
                    "config": asdict(config),
                }
            )
        )
        partial = folder / "model.partial"
        torch.save({k: v.cpu() for k, v in model.state_dict().items()}, partial)
        partial.replace(weights)
    return model, key
