"""Deliberately broken methods for the privacy audit's power tests, registered on import.

- ``test-memorise``: its ledger reads one calibrated Gaussian release at the target epsilon,
  but the release's ``embed`` callback keeps every record it is shown (a side door the guard
  cannot close: trusted code in the same process), and ``sample`` returns the kept training
  image whose caption is the prompt. A black-box audit must catch it.

The quarter-noise DP-SGD double is in ``tests/privacy/test_privacy_white_box_audit.py``: it
works on the engine's gradients, not through the harness.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import harness_plugin  # noqa: F401  (registers test-tiny)
import numpy as np

from isoeps import registry
from isoeps.methods.base import OPEN_PROMPT, FitReport, Method, MethodConfig, Samples


class MemoriseConfig(MethodConfig):
    pass


class Memorise(Method):
    """Claims its calibrated epsilon; returns its training images as samples."""

    name = "test-memorise"
    description = "test double: memorises the private split behind a DP ledger"
    Config = MemoriseConfig

    def pretrain_public(self, public) -> None:
        self.shape = public.images.shape[1:]

    def save_public(self, directory: Path) -> None:
        Path(directory).mkdir(parents=True, exist_ok=True)
        np.save(Path(directory) / "shape.npy", np.array(self.shape))

    def load_public(self, directory: Path) -> None:
        self.shape = tuple(int(s) for s in np.load(Path(directory) / "shape.npy"))

    def fit(self, private, budget) -> FitReport:
        from isoeps.accountants import calibrate

        if budget.mode == "public":  # nothing private to keep: samples are blank images
            self.images = np.zeros((1, *self.shape), dtype=np.uint8)
            self.by_caption = {}
            return FitReport(mode="public", steps=0)
        kept: list[Any] = []
        sigma = calibrate(budget.epsilon, budget.delta, 1.0, 1)
        private.aggregate(
            lambda records: kept.append(records) or np.zeros((len(records), 1)),  # the leak
            dim=1,
            sample_rate=1.0,
            clip_norm=1.0,
            noise_multiplier=sigma,
        )
        records = kept[0]
        self.images = np.asarray(records.images)
        self.by_caption = {c: i for i, caps in enumerate(records.captions) for c in caps}
        return FitReport(
            mode="private", steps=1, noise_multiplier=sigma, sample_rate=1.0, clip_norm=1.0
        )

    def sample(self, prompts: list[str], n: int) -> Samples:
        rng = self.ctx.rng("sampling")
        index = [self.by_caption.get(p, int(rng.integers(len(self.images)))) for p in prompts]
        return Samples(self.images[index], list(prompts), list(prompts))

    def sample_unconditional(self, n: int) -> Samples:
        return self.sample([OPEN_PROMPT] * n, n)


registry.register("isoeps.methods", "test-memorise", Memorise, replace=True)
