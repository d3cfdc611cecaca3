"""Per-record random streams: generators built from the seeds the guard hands out.

A batch's ``seeds`` (:meth:`isoeps.privacy.guard.PrivateData.record_seeds`) are keyed to each
record's id; these helpers turn them into generators for the code that processes the records
(a caption draw, condition dropout, textual inversion's timesteps and noise). No mechanism
randomness (masks, noise) lives here: that is :mod:`isoeps.privacy.rng`, inside the guard.
"""

from __future__ import annotations

import numpy as np


def record_generators(seeds: np.ndarray) -> list[np.random.Generator]:
    """One numpy generator per record seed (see :meth:`MechanismRandom.record_seeds`)."""
    return [np.random.default_rng(int(seed)) for seed in np.asarray(seeds, dtype=np.uint64)]


def record_torch_generators(seeds: np.ndarray) -> list:
    """One CPU ``torch.Generator`` per record seed (draws are moved to the device after)."""
    import torch

    return [
        torch.Generator().manual_seed(int(seed) & 0x7FFF_FFFF_FFFF_FFFF)
        for seed in np.asarray(seeds, dtype=np.uint64)
    ]
