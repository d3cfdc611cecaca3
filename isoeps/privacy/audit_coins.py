"""The canary coins of a one-run privacy audit: one fair coin per canary, drawn by the harness.

Steinke, Nasr and Jagielski (arXiv:2305.08846) need each of the m canaries included by an
independent fair coin that the training run cannot see. The coins are the audit's secret:
they come from a stream no method is handed (a spawn key of the cell seed that
``MethodContext`` never uses, distinct from the mechanism stream of
:func:`isoeps.privacy.rng.mechanism_seed`), or from the OS CSPRNG in secure mode, and the
caller keeps them outside the method's reach until ``fit`` has returned.
"""

from __future__ import annotations

import os

import numpy as np

#: The coins' spawn key under a cell seed: far from the method purposes (0..4) and from the
#: mechanism stream (3), so neither a method's streams nor the noise predicts a coin.
_COIN_SPAWN_KEY = (0xA0D17,)


def canary_coins(*, m: int, cell_seed: int, secure: bool = False) -> np.ndarray:
    """One independent fair coin per canary: ``True`` puts the canary in the private split.

    Args:
        m: the number of canaries, >= 1.
        cell_seed: the cell's root seed (unused in secure mode).
        secure: draw from the OS CSPRNG, reproducible by nobody.

    Returns:
        bool ``(m,)``.

    Raises:
        ValueError: ``m`` is not an integer >= 1.
    """
    if isinstance(m, bool) or not isinstance(m, int) or m < 1:
        raise ValueError(f"the audit needs an integer m >= 1 canaries, got {m!r}")
    if secure:
        return (np.frombuffer(os.urandom(m), dtype=np.uint8) & 1).astype(bool)
    sequence = np.random.SeedSequence(cell_seed, spawn_key=_COIN_SPAWN_KEY)
    return np.random.default_rng(sequence).random(m) < 0.5
