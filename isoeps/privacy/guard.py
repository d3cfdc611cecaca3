"""``PrivateData``: the only door to private records.

Every accessor appends the mechanism it implements to the guard's ledger *before* any record
is touched, so the ledger can never understate what was spent:

- :meth:`PrivateData.poisson_batches` yields Poisson-subsampled batches for DP-SGD and records
  ``SubsampledGaussian(sigma, q, T)``. It is meant for the shared DP-SGD engine
  (:mod:`isoeps.privacy.engine`), which does the clipping and the noise; methods call the
  engine, never this accessor.
- :meth:`PrivateData.aggregate` is one subsampled Gaussian release of per-record vectors
  (DPAgg-TI): Poisson subsample, clip each vector to ``clip_norm``, sum, add
  N(0, sigma^2 C^2), divide by the constant ``q N``.
- :meth:`PrivateData.aggregate_groups` is the same release over groups of records (DPAgg-TI
  with g > 1): records fall into G = ceil(N / g) groups by a hash of their own id, groups are
  Poisson-subsampled, one clipped vector per group; records ``replace_one`` adjacency.
- :meth:`PrivateData.raw` hands out the dataset and records ``NonPrivate``: epsilon = inf.

The wrapped dataset is anything sized and indexable; the guard never imports the datasets
package. Batches are fetched with ``dataset.take(indices)`` when the dataset has it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from isoeps.accountants import Ledger, NonPrivate, SubsampledGaussian
from isoeps.privacy.rng import MechanismRandom


@dataclass(frozen=True)
class PoissonBatch:
    """One Poisson-subsampled batch. ``records`` may be empty (that is part of the mechanism)."""

    step: int
    records: Any
    size: int


@dataclass(frozen=True)
class AggregateRelease:
    """The output of :meth:`PrivateData.aggregate`.

    ``value`` is the noisy mean estimate (sum + noise) / ``divisor`` (q N, or q G for groups).
    ``sampled`` is the realised subsample size (records, or groups); it is not part of the
    release's guarantee and is kept for diagnostics.
    """

    value: np.ndarray
    sampled: int
    noise_std: float
    divisor: float


class PrivateData:
    """Wraps a private dataset; all access is recorded in :attr:`ledger`."""

    def __init__(
        self,
        dataset: Any,
        *,
        seed: int | None,
        secure: bool = False,
        ledger: Ledger | None = None,
    ) -> None:
        self._dataset = dataset
        self._num_records = len(dataset)
        self._random = MechanismRandom(seed=seed, secure=secure)
        self._ledger = ledger if ledger is not None else Ledger()

    @property
    def ledger(self) -> Ledger:
        return self._ledger

    @property
    def secure(self) -> bool:
        return self._random.secure

    @property
    def random(self) -> MechanismRandom:
        """The mechanism randomness (sampling masks and noise) shared with the DP engine."""
        return self._random

    def __len__(self) -> int:
        """N, the number of private records (treated as public, as in DP-SGD practice)."""
        return self._num_records

    def raw(self, *, reason: str = "raw access") -> Any:
        """The dataset itself. Records ``NonPrivate``: the ledger's epsilon becomes infinite."""
        self._ledger.append(NonPrivate(reason=reason))
        return self._dataset

    def _take(self, indices: np.ndarray) -> Any:
        take = getattr(self._dataset, "take", None)
        if take is not None:
            return take(indices)
        return [self._dataset[int(i)] for i in indices]

    def poisson_batches(
        self, *, noise_multiplier: float, sample_rate: float, steps: int, note: str = "dp-sgd"
    ) -> Iterator[PoissonBatch]:
        """Yield ``steps`` Poisson batches; records ``SubsampledGaussian(sigma, q, steps)`` first.

        The caller promises to clip each record's contribution and to add Gaussian noise of
        std ``noise_multiplier * clip_norm`` to the sum: that is the DP-SGD engine's job.
        """
        self._ledger.append(
            SubsampledGaussian(noise_multiplier, sample_rate, int(steps), note=note)
        )
        return self._batches(sample_rate, int(steps))

    def _batches(self, sample_rate: float, steps: int) -> Iterator[PoissonBatch]:
        for step in range(steps):
            indices = np.flatnonzero(self._random.poisson_mask(self._num_records, sample_rate))
            yield PoissonBatch(step=step, records=self._take(indices), size=len(indices))

    def aggregate(
        self,
        embed: Callable[[Any], Sequence[np.ndarray] | np.ndarray],
        *,
        dim: int,
        sample_rate: float,
        clip_norm: float,
        noise_multiplier: float,
        note: str = "aggregation",
    ) -> AggregateRelease:
        """One subsampled Gaussian release of per-record vectors (add/remove, sensitivity C).

        ``embed(records)`` maps the Poisson-sampled records to one ``dim``-vector each (it is
        not called when the subsample is empty: the release is then pure noise). Each vector is
        clipped to L2 norm ``clip_norm``; the clipped vectors are summed; N(0, sigma^2 C^2) is
        added per coordinate; the result is divided by the constant ``q * N`` (never by the
        realised sample size, which would leak it).
        """
        if not clip_norm > 0 or math.isnan(clip_norm):
            raise ValueError(f"clip_norm must be > 0, got {clip_norm!r}")
        self._ledger.append(SubsampledGaussian(noise_multiplier, sample_rate, 1, note=note))
        indices = np.flatnonzero(self._random.poisson_mask(self._num_records, sample_rate))
        if len(indices):
            vectors = np.asarray(embed(self._take(indices)), dtype=np.float64)
        else:
            vectors = np.zeros((0, dim))
        if vectors.shape != (len(indices), dim):
            raise ValueError(
                f"embed must return one {dim}-vector per record, got shape {vectors.shape}"
            )
        return aggregate_release(
            vectors,
            clip_norm=clip_norm,
            noise_multiplier=noise_multiplier,
            divisor=sample_rate * self._num_records,
            random=self._random,
        )

    def aggregate_groups(
        self,
        embed: Callable[[Any, np.ndarray], Sequence[np.ndarray] | np.ndarray],
        *,
        dim: int,
        group_size: int,
        sample_rate: float,
        clip_norm: float,
        noise_multiplier: float,
        id_of: Callable[[Any], str] | None = None,
        note: str = "grouped aggregation",
    ) -> AggregateRelease:
        """One subsampled Gaussian release of per-group vectors (replace-one, sensitivity 2C).

        The N records fall into G = ceil(N / ``group_size``) groups; a record's group is
        :func:`group_of` its id (``id_of(record)``, or the dataset's ``ids``), so it depends on
        that record alone. Each group is Poisson-sampled at rate q. ``embed(records, groups)``
        gets the records of the sampled non-empty groups and ``groups``, each record's
        position among them (0..k-1), and returns one ``dim``-vector per group, ``(k, dim)``.
        Sampled empty groups contribute the zero vector. Vectors are clipped to ``clip_norm``
        C, summed, N(0, sigma^2 C^2) is added and the sum is divided by the constant ``q G``.

        Adjacency: with N, hence G, public (as the divisor already assumes), adding or removing
        one image moves only its own group's clipped vector, from v to v' with |v|, |v'| <= C:
        replace-one at the group level, a shift of up to 2C. The ledger entry is
        ``SubsampledGaussian(sigma, q, 1, adjacency="replace_one")``, whose sigma is noise std
        / C; pld's REPLACE_ONE accounts the 2C shift itself (see ``SubsampledGaussian``).
        """
        if not clip_norm > 0 or math.isnan(clip_norm):
            raise ValueError(f"clip_norm must be > 0, got {clip_norm!r}")
        if not isinstance(group_size, int) or isinstance(group_size, bool) or group_size < 1:
            raise ValueError(f"group_size must be an integer >= 1, got {group_size!r}")
        if id_of is None and getattr(self._dataset, "ids", None) is None:
            raise ValueError(
                "aggregate_groups needs record ids: pass id_of or wrap a dataset with `ids`"
            )
        num_groups = math.ceil(self._num_records / group_size)
        self._ledger.append(
            SubsampledGaussian(noise_multiplier, sample_rate, 1, adjacency="replace_one", note=note)
        )
        labels = np.array([group_of(i, num_groups) for i in self._ids(id_of)], dtype=np.int64)
        chosen = np.flatnonzero(self._random.poisson_mask(num_groups, sample_rate))
        members = [np.flatnonzero(labels == g) for g in chosen]
        filled = [m for m in members if len(m)]
        vectors = np.zeros((len(chosen), dim))
        if filled:
            indices = np.concatenate(filled)
            position = np.repeat(np.arange(len(filled)), [len(m) for m in filled])
            embedded = np.asarray(embed(self._take(indices), position), dtype=np.float64)
            if embedded.shape != (len(filled), dim):
                raise ValueError(
                    f"embed must return one {dim}-vector per group, got shape {embedded.shape} "
                    f"for {len(filled)} groups"
                )
            vectors[: len(filled)] = embedded  # the rows of empty groups stay zero
        return aggregate_release(
            vectors,
            clip_norm=clip_norm,
            noise_multiplier=noise_multiplier,
            divisor=sample_rate * num_groups,
            random=self._random,
        )

    def _ids(self, id_of: Callable[[Any], str] | None) -> list[str]:
        if id_of is None:
            return [str(i) for i in self._dataset.ids]
        return [str(id_of(self._dataset[i])) for i in range(self._num_records)]


def group_of(record_id: str, num_groups: int) -> int:
    """The group of a record: sha256 of its id, mod ``num_groups``.

    Stable across runs and processes (unlike ``hash``), and a function of this id alone.
    """
    digest = hashlib.sha256(str(record_id).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % num_groups


def clip_rows(vectors: np.ndarray, clip_norm: float) -> np.ndarray:
    """Scale each row to L2 norm at most ``clip_norm``."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors * np.minimum(1.0, clip_norm / np.maximum(norms, 1e-12))


def aggregate_release(
    vectors: np.ndarray,
    *,
    clip_norm: float,
    noise_multiplier: float,
    divisor: float,
    random: MechanismRandom,
) -> AggregateRelease:
    """Clip, sum, add N(0, (sigma C)^2), divide by the constant ``divisor``.

    Under both adjacencies the noise std is sigma C (see ``SubsampledGaussian``)."""
    total = clip_rows(vectors, clip_norm).sum(axis=0)
    noise_std = noise_multiplier * clip_norm
    noisy = total + noise_std * random.standard_normal(total.shape[0])
    return AggregateRelease(
        value=noisy / divisor, sampled=int(vectors.shape[0]), noise_std=noise_std, divisor=divisor
    )
