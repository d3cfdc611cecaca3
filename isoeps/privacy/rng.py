"""Randomness for private mechanisms: seeded (benchmark mode) or cryptographic (``--secure``).

Benchmark mode makes a cell reproducible, which also means its stored seed regenerates the
noise: such a run is "a benchmark run, not a DP release". Secure mode draws sampling masks,
noise and per-record randomness from the operating system's CSPRNG (``os.urandom``) and keeps
no seed.

What benchmark mode promises: the same cell seed gives the same masks, noise and per-record
randomness, and the mechanism's stream is derived from the cell seed through
:func:`mechanism_seed`, a path that no method is handed (a method's ``ctx`` derives its own
streams from other spawn keys). What it does not promise: secrecy. Anyone holding the stored
cell seed, the method code included if it reads the run's config from disk, can regenerate the
noise; only ``--secure`` closes that door.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence

import numpy as np

#: The spawn key of the mechanism stream under a cell seed: key 3, that of the retired "noise"
#: method purpose, so that benchmark numbers reproduce across the change. Methods are no longer
#: handed it (``isoeps.methods.base`` skips key 3) nor the root seed it is derived from.
_MECHANISM_SPAWN_KEY = (3,)


def mechanism_seed(cell_seed: int) -> int:
    """The benchmark-mode seed of a cell's mechanism randomness (masks, noise, per-record
    seeds), derived from the cell seed by the harness alone."""
    sequence = np.random.SeedSequence(cell_seed, spawn_key=_MECHANISM_SPAWN_KEY)
    return int(sequence.generate_state(1, dtype=np.uint32)[0])


class MechanismRandom:
    """Uniforms and standard normals for Poisson masks and Gaussian noise, and per-record
    seeds keyed to record ids."""

    __slots__ = ("_generator", "_record_key", "secure")

    def __init__(self, *, seed: int | None, secure: bool = False) -> None:
        if not secure and seed is None:
            raise ValueError("benchmark mode needs a seed; pass secure=True for a CSPRNG")
        self.secure = secure
        self._generator = None if secure else np.random.default_rng(seed)
        self._record_key = (
            None if secure else hashlib.sha256(b"isoeps-record-key/%d" % int(seed)).digest()
        )

    def record_seeds(self, ids: Sequence[str], *, purpose: str) -> np.ndarray:
        """One uint64 seed per id: a keyed SHA-256 of (purpose, id) in benchmark mode, so it
        depends on that record alone; fresh CSPRNG draws in secure mode.

        Args:
            ids: the record ids.
            purpose: what the seeds are for; part of the hashed key.

        Returns:
            uint64 ``(len(ids),)``.
        """
        if self._record_key is None:
            return np.frombuffer(os.urandom(8 * len(ids)), dtype=np.uint64).copy()
        prefix = self._record_key + purpose.encode("utf-8") + b"\x00"
        seeds = [
            int.from_bytes(hashlib.sha256(prefix + i.encode("utf-8")).digest()[:8], "little")
            for i in ids
        ]
        return np.asarray(seeds, dtype=np.uint64)

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
        """Include each record independently with probability ``sample_rate``.

        Args:
            num_records: N, the number of records.
            sample_rate: q, each record's inclusion probability.

        Returns:
            A boolean mask ``(num_records,)``.
        """
        return self.uniform(num_records) < sample_rate

    def integers(self, high: int, size: int) -> np.ndarray:
        """Uniform integers in [0, high), e.g. the caption drawn for each sampled record.

        Args:
            high: the exclusive upper bound; >= 1.
            size: how many integers.

        Returns:
            int64 ``(size,)``.
        """
        return np.minimum((self.uniform(size) * high).astype(np.int64), high - 1)
