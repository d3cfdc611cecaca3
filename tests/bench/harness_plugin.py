"""Test doubles for the harness tests, registered on import (a suite's ``imports:`` loads it).

- dataset ``test-tiny``: random coloured squares with a colour attribute;
- method ``test-mean-image``: one ``guard.aggregate`` release of flattened images (sigma fixed
  at 4 by default: epsilon about 0.2; ``sigma: null`` calibrates); samples are the
  released mean plus seeded noise. ``fail`` raises in fit; ``overspend`` records a ledger
  above the target; ``sleep_s`` slows fit (for the kill test); ``attack`` tries one of the
  guard doors (see ``MeanImage.ATTACKS``);
- metric ``test-brightness``: the mean pixel value of the samples;
- metric ``test-open-brightness``: the same of the open-prompt samples;
- metric ``test-nearest``: reads the private split (not DP); reports the closest pairs.
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from isoeps import registry
from isoeps.datasets.source import DatasetSource, SourceConfig
from isoeps.methods.base import (
    OPEN_PROMPT,
    FitReport,
    Method,
    MethodConfig,
    Samples,
    private_field,
)
from isoeps.metrics.base import Metric, MetricValue
from isoeps.testing import tiny_split

SIZES = {"public": 24, "private": 64, "reference": 16, "eval": 16}


class TinyConfig(SourceConfig):
    brightness: int = 0
    private_size: int = SIZES["private"]


class TinySource(DatasetSource):
    name = "test-tiny"
    description = "tiny coloured squares"
    Config = TinyConfig

    def load(self, split: str, *, resolution: int = 8, n: int | None = None, seed: int = 0):
        size = self.config.private_size if split == "private" else SIZES[split]
        split_data = tiny_split(
            split, n=n or size, resolution=resolution, seed=seed, dataset=self.name
        )
        if self.config.brightness:
            split_data.images[:] = np.clip(
                split_data.images.astype(int) + self.config.brightness, 0, 255
            ).astype(np.uint8)
        return split_data


class MeanConfig(MethodConfig):
    clip_norm: float = private_field(1.0)
    sample_rate: float = private_field(0.5)
    noise_scale: float = private_field(10.0)
    sigma: float | None = private_field(4.0)  # None: calibrate to the target (seconds per cell)
    fail: bool = private_field(False)
    overspend: bool = private_field(False)
    sleep_s: float = private_field(0.0)
    attack: str | None = private_field(None)


class MeanImage(Method):
    name = "test-mean-image"
    description = "test double: the DP mean image"
    Config = MeanConfig
    version = "1"
    plan_calls: ClassVar[int] = 0

    def public_cache_key(self) -> dict[str, Any]:
        return {"method": self.name, "version": self.version}

    def pretrain_public(self, public) -> None:
        self.public_mean = public.images.astype(np.float64).mean(axis=0)
        self.shape = public.images.shape[1:]
        self.mean = self.public_mean

    def save_public(self, directory: Path) -> None:
        Path(directory).mkdir(parents=True, exist_ok=True)
        np.save(Path(directory) / "mean.npy", self.public_mean)

    def load_public(self, directory: Path) -> None:
        self.public_mean = np.load(Path(directory) / "mean.npy")
        self.shape = self.public_mean.shape
        self.mean = self.public_mean

    def plan(self, budget, num_records: int) -> dict[str, Any]:
        return {"sample_rate": self.config.sample_rate, "steps": 1}

    #: Doors a careless or casually malicious method might try; each must end in a refused or
    #: failed cell, never in a finished private one.
    ATTACKS: ClassVar[tuple[str, ...]] = (
        "private_attribute",
        "raw_in_sample",
        "raw_in_sample_caught",
        "swap_random",
        "noise_seed",
        "empty_ledger",
        "skip_release",
    )

    def _attack_in_fit(self, private) -> None:
        attack = self.config.attack
        if attack == "private_attribute":
            self.mean = private._dataset.images.mean(axis=0)
        elif attack == "swap_random":
            private._random = None
        elif attack == "noise_seed":
            self.ctx.seed_for("noise")
        elif attack == "empty_ledger":
            private.ledger._entries.clear()
        elif attack in ("raw_in_sample", "raw_in_sample_caught"):
            self._guard = private

    def fit(self, private, budget) -> None:
        from isoeps.accountants import calibrate

        self.check_budget(budget)
        if self.config.sleep_s:
            time.sleep(self.config.sleep_s)
        if self.config.fail:
            raise RuntimeError("planted failure")
        if budget.mode == "public":
            if self.config.attack == "public_touch":
                len(private)
            if self.config.attack == "dict_report":
                return {"mode": "public", "steps": 0}
            return
        if budget.mode == "inf":
            data = private.raw(reason="inf mode")
            self.mean = data.images.astype(np.float64).mean(axis=0)
            return
        sigma = self.config.sigma
        if sigma is None:
            sigma = calibrate(budget.epsilon, budget.delta, self.config.sample_rate, 1)
        if self.config.overspend:
            sigma = 0.5
        if self.config.attack == "skip_release":
            return
        dim = int(np.prod(self.shape))
        scale = 255.0 * np.sqrt(dim)
        release = private.aggregate(
            lambda records: records.images.reshape(len(records), -1) / scale,
            dim=dim,
            sample_rate=self.config.sample_rate,
            clip_norm=self.config.clip_norm,
            noise_multiplier=sigma,
        )
        self.mean = np.clip(release.value.reshape(self.shape) * scale, 0, 255)
        if self.config.attack:
            self._attack_in_fit(private)
        return FitReport(
            mode="private", steps=1, noise_multiplier=sigma,
            sample_rate=self.config.sample_rate, clip_norm=self.config.clip_norm,
        )  # fmt: skip

    def sample(self, prompts: list[str], n: int) -> Samples:
        if self.config.attack == "raw_in_sample":
            self.mean = self._guard.raw().images.mean(axis=0)
        elif self.config.attack == "raw_in_sample_caught":
            with contextlib.suppress(Exception):  # the attack swallows the refusal
                self.mean = self._guard.raw().images.mean(axis=0)
        rng = self.ctx.rng("sampling")
        images = self.mean[None] + rng.normal(0, self.config.noise_scale, (n, *self.shape))
        chosen = [prompts[i % len(prompts)] for i in range(n)]
        return Samples(np.clip(images, 0, 255).astype(np.uint8), chosen, chosen)

    def sample_unconditional(self, n: int) -> Samples:
        return self.sample([OPEN_PROMPT], n)


class Brightness(Metric):
    name = "test-brightness"

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = offset

    def evaluate(self, inputs) -> list[MetricValue]:
        return [
            MetricValue(
                name="brightness",
                value=float(inputs.fake.mean()) + self.offset,
                higher_is_better=False,
                n=len(inputs.fake),
                backbone="pixels",
                details={"resize": "none"},
            )
        ]


class OpenBrightness(Metric):
    """The mean pixel value of the open-prompt samples (so the harness must draw them)."""

    name = "test-open-brightness"
    needs = frozenset({"open_prompt"})

    def evaluate(self, inputs) -> list[MetricValue]:
        return [
            MetricValue(
                name="open_brightness",
                value=float(inputs.open_prompt.mean()),
                higher_is_better=False,
                n=len(inputs.open_prompt),
                backbone="pixels",
            )
        ]


class Nearest(Metric):
    """Pixel distance from each sample to its nearest private image (reads the private split)."""

    name = "test-nearest"
    needs = frozenset({"private"})

    def evaluate(self, inputs) -> list[MetricValue]:
        fake = inputs.fake.reshape(len(inputs.fake), -1).astype(np.float64)
        private = inputs.private.images.reshape(len(inputs.private), -1).astype(np.float64)
        distances = ((fake[:, None, :] - private[None]) ** 2).sum(-1) ** 0.5
        nearest = distances.argmin(axis=1)
        closest = distances[np.arange(len(fake)), nearest]
        order = np.argsort(closest)[:4]
        return [
            MetricValue(
                name="nearest_private",
                value=float(closest.mean()),
                higher_is_better=True,
                n=len(fake),
                backbone="pixels",
                artifacts={
                    "closest_pairs": [
                        {
                            "sample": int(j),
                            "private_id": inputs.private.ids[nearest[j]],
                            "d_train": float(closest[j]),
                        }
                        for j in order
                    ]
                },
            )
        ]


registry.register("isoeps.metrics", "test-nearest", Nearest, replace=True)
registry.register("isoeps.datasets", "test-tiny", TinySource, replace=True)
registry.register("isoeps.methods", "test-mean-image", MeanImage, replace=True)
registry.register("isoeps.metrics", "test-brightness", Brightness, replace=True)
registry.register("isoeps.metrics", "test-open-brightness", OpenBrightness, replace=True)


def suite_yaml(**overrides: Any) -> str:
    """A tiny suite over the doubles; keyword arguments replace top-level keys."""
    suite: dict[str, Any] = {
        "name": "tiny",
        "imports": ["harness_plugin"],
        "datasets": {"tiny": {"name": "test-tiny", "resolution": 8}},
        "methods": {"mean": {"method": "test-mean-image", "config": {}}},
        "budgets": [1, 10, "inf", "public"],
        "seeds": [0],
        "n_samples": 8,
        "metrics": {"test-brightness": {}},
        "cross_check_accountants": ["pld"],
        "store": {"samples": "all", "grid_size": 4},
    }
    suite.update(overrides)
    return json.dumps(suite)  # JSON is YAML
