"""Randomness for private mechanisms: seeded (benchmark mode) or cryptographic (``--secure``).

Benchmark mode makes a cell reproducible, which also means its stored seed regenerates the
noise: such a run is "a benchmark run, not a DP release". Secure mode draws sampling masks
and noise from the operating system's CSPRNG (``os.urandom``) and keeps no seed.
"""

from __future__ import annotations

import os

import numpy as np


class MechanismRandom:
    """Uniforms and standard normals for Poisson masks and Gaussian noise."""

    def __init__(self, *, seed: int | None, secure: bool = False) -> None:
        if not secure and seed is None:
            raise ValueError("benchmark mode needs a seed; pass secure=True for a CSPRNG")
        self.secure = secure
        self._generator = None if secure else np.random.default_rng(seed)

    def uniform(self, size: int) -> np.ndarray:
        """``size`` floats in [0, 1)."""
        if self._generator is not None:
            return self._generator.random(size)
        raw = np.frombuffer(os.urandom(8 * size), dtype=np.uint64)
        return (raw >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))

    def standard_normal(self, size: int) -> np.ndarray:
        """``size`` float64 draws from N(0, 1) (Box-Muller over CSPRNG uniforms in secure mode)."""
        if self._generator is not None:
            return self._generator.standard_normal(size)
        half = (size + 1) // 2
        u1 = 1.0 - self.uniform(half)  # in (0, 1], so log is finite
        u2 = self.uniform(half)
        radius = np.sqrt(-2.0 * np.log(u1))
        draws = np.concatenate([radius * np.cos(2 * np.pi * u2), radius * np.sin(2 * np.pi * u2)])
        return draws[:size]

    def poisson_mask(self, num_records: int, sample_rate: float) -> np.ndarray:
        """Include each record independently with probability ``sample_rate``."""
        return self.uniform(num_records) < sample_rate

    def integers(self, high: int, size: int) -> np.ndarray:
        """Uniform integers in [0, high), e.g. the caption drawn for each sampled record."""
        return np.minimum((self.uniform(size) * high).astype(np.int64), high - 1)
