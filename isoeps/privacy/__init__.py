"""Private data access: the ``PrivateData`` guard, mechanism randomness and the DP-SGD engine.

The guard and the randomness need only numpy. The engine and the per-sample-gradient
backends need torch and load on first use, so ``import isoeps.privacy`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

from isoeps.privacy.guard import AggregateRelease, PoissonBatch, PrivateData
from isoeps.privacy.rng import MechanismRandom

_LAZY = {
    "DPSGDConfig": "isoeps.privacy.engine",
    "DPPlan": "isoeps.privacy.engine",
    "DPTrainReport": "isoeps.privacy.engine",
    "plan_dp_sgd": "isoeps.privacy.engine",
    "train_dp_sgd": "isoeps.privacy.engine",
    "gaussian_noise": "isoeps.privacy.engine",
    "PerSampleGradients": "isoeps.privacy.per_sample",
    "create_backend": "isoeps.privacy.per_sample",
    "clip_and_sum": "isoeps.privacy.per_sample",
}

__all__ = [
    "AggregateRelease",
    "DPPlan",
    "DPSGDConfig",
    "DPTrainReport",
    "MechanismRandom",
    "PerSampleGradients",
    "PoissonBatch",
    "PrivateData",
    "clip_and_sum",
    "create_backend",
    "gaussian_noise",
    "plan_dp_sgd",
    "train_dp_sgd",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'isoeps.privacy' has no attribute {name!r}")
