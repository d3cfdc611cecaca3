"""``PrivateData``: the door to private records, and the record of what went through it.

Every accessor appends the mechanism it implements to the ledger *before* any record is
touched, so the ledger can never understate what was spent. The guard owns the budget mode:
a ``private`` guard releases only clipped, noised statistics; an ``inf`` guard runs the very
same sampling with no clipping and no noise and records ``NonPrivate`` (epsilon = inf). A
method passes the noise multiplier it was calibrated to (``None`` under ``inf``), and a call
that does not match the guard's mode is refused. A ``public`` cell gets no guard at all.

- :meth:`PrivateData.poisson_batches` yields Poisson-subsampled batches for DP-SGD and records
  ``SubsampledGaussian(sigma, q, T)``. It is meant for the shared DP-SGD engine
  (:mod:`isoeps.privacy.engine`), which does the clipping and the noise; methods call the
  engine, never this accessor.
- :meth:`PrivateData.aggregate` is one subsampled Gaussian release of per-record vectors
  (DPAgg-TI): Poisson subsample, clip each vector to ``clip_norm``, sum, add
  N(0, sigma^2 C^2), divide by the constant ``q N``.
- :meth:`PrivateData.aggregate_groups` is the same release over a fixed, public number of
  hash groups (DPAgg-TI with g > 1); see its docstring for the adjacency argument.
- :meth:`PrivateData.raw` hands out the dataset and records ``NonPrivate``: epsilon = inf.

What the guard promises (the trust model; a method plugin is trusted code in the same
process, which Python cannot sandbox): every honest path goes through the ledger, and the
obvious doors are shut.

- The ledger is the harness's: the harness passes it in and keeps it; :attr:`ledger` returns a
  copy, so a method cannot edit or empty what the harness re-accounts.
- The dataset and the mechanism randomness live in a closure, not in attributes; the guard has
  fixed slots and refuses attribute assignment, so neither can be read as ``guard._dataset``
  nor swapped for a fake.
- :meth:`close` (the harness calls it when ``fit`` returns) drops the dataset. Any access
  after that raises :class:`GuardClosedError` *and* appends ``NonPrivate`` to the harness's
  ledger, so a method that catches the error still gets its cell refused.
- Per-record randomness (the caption drawn for a record, condition dropout, textual
  inversion's timesteps and noise) is keyed to the record's id, never to its position in a
  batch (:meth:`record_seeds`): adding one record leaves every other record's randomness as
  it was. In secure mode it comes from the operating system's CSPRNG.

The wrapped dataset is anything sized and indexable; the guard never imports the datasets
package. Batches are fetched with ``dataset.take(indices)`` when the dataset has it, and a
record's id is ``dataset.ids[i]`` when the dataset has ids (else its index).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from isoeps.accountants import Ledger, Mechanism, NonPrivate, SubsampledGaussian
from isoeps.errors import PrivacyError
from isoeps.privacy.rng import MechanismRandom, mechanism_seed

if TYPE_CHECKING:
    from isoeps.privacy.gradient_canaries import GradientCanaries

#: Budget modes a guard runs (a ``public`` cell gets no guard).
MODES: tuple[str, ...] = ("private", "inf")


class GuardClosedError(PrivacyError):
    """Private data was asked for after ``fit`` returned (the guard is closed)."""


@dataclass(frozen=True)
class PoissonBatch:
    """One Poisson-subsampled batch. ``records`` may be empty (that is part of the mechanism).

    ``seeds`` holds one 64-bit seed per record, keyed to the record's id and the step (see
    :meth:`PrivateData.record_seeds`): the only randomness a record's contribution may use.
    """

    step: int
    records: Any
    size: int
    seeds: np.ndarray
    #: The records' ids, in batch order.
    ids: tuple[str, ...] = ()


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


class _Vault:
    """What the guard's closure holds while it is open."""

    __slots__ = ("dataset", "random")

    def __init__(self, dataset: Any, random: MechanismRandom) -> None:
        self.dataset = dataset
        self.random = random


def _door(dataset: Any, random: MechanismRandom, ledger: Ledger) -> Callable[..., Any]:
    """A closure over the private state: ``door()`` gives the open vault, ``door("close")``
    drops it and ``door("probe")`` says whether it is closed. After closing, every ``door()``
    records ``NonPrivate`` in the harness's ledger and raises."""
    state: list[_Vault | None] = [_Vault(dataset, random)]

    def door(action: str = "open") -> Any:
        if action == "close":
            state[0] = None
            return None
        if action == "probe":
            return state[0] is None
        vault = state[0]
        if vault is None:
            ledger.append(NonPrivate(reason="private data asked for after fit returned"))
            raise GuardClosedError(
                "the private-data guard is closed: fit has returned, so sample() and later "
                "code may not read private records; the cell is refused"
            )
        return vault

    return door


class PrivateData:
    """Wraps a private dataset; all access is recorded in the harness's ledger.

    Args:
        dataset: the private records (sized, indexable; ``take`` and ``ids`` are used when
            present).
        mode: ``"private"`` (every release clipped and noised) or ``"inf"`` (the same
            sampling, no clipping, no noise, ``NonPrivate`` in the ledger).
        seed: the mechanism seed in benchmark mode (``None`` with ``secure=True``). The
            harness derives it from the cell seed through a path no method is given
            (:func:`isoeps.privacy.rng.mechanism_seed`).
        secure: draw masks, noise and per-record randomness from the OS CSPRNG.
        ledger: the ledger to append to; the caller keeps it (the harness re-accounts it).
        gradient_canaries: the white-box audit's Dirac canaries, which the DP-SGD engine
            puts in place of the canary records' gradients (None: not audited white-box).
    """

    __slots__ = ("_canaries", "_door", "_ledger", "_mode", "_num_records", "_secure")

    def __init__(
        self,
        dataset: Any,
        *,
        mode: str = "private",
        seed: int | None,
        secure: bool = False,
        ledger: Ledger | None = None,
        gradient_canaries: GradientCanaries | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"PrivateData mode must be one of {MODES}, got {mode!r}")
        ledger = ledger if ledger is not None else Ledger()
        random = MechanismRandom(seed=seed, secure=secure)
        object.__setattr__(self, "_mode", mode)
        object.__setattr__(self, "_ledger", ledger)
        object.__setattr__(self, "_num_records", len(dataset))
        object.__setattr__(self, "_secure", bool(secure))
        object.__setattr__(self, "_canaries", gradient_canaries)
        object.__setattr__(self, "_door", _door(dataset, random, ledger))

    @classmethod
    def for_cell(
        cls,
        dataset: Any,
        *,
        mode: str,
        cell_seed: int,
        secure: bool,
        ledger: Ledger,
        gradient_canaries: GradientCanaries | None = None,
    ) -> PrivateData:
        """The harness's guard for one cell: the mechanism seed is derived from the cell seed
        here (:func:`isoeps.privacy.rng.mechanism_seed`), and none is kept in secure mode.

        Args:
            dataset: the cell's private records.
            mode: ``private`` or ``inf``, as the cell's budget.
            cell_seed: the cell's root seed; unused in secure mode.
            secure: draw the mechanism's randomness from the OS CSPRNG.
            ledger: the harness's ledger, to which every release is appended.
            gradient_canaries: the white-box audit's canaries, or None.

        Returns:
            The guard.
        """
        seed = None if secure else mechanism_seed(cell_seed)
        return cls(
            dataset, mode=mode, seed=seed, secure=secure, ledger=ledger,
            gradient_canaries=gradient_canaries,
        )  # fmt: skip

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"PrivateData is read-only: cannot set {name!r}")

    @property
    def ledger(self) -> Ledger:
        """A copy of what was spent so far (editing it changes nothing the harness reads)."""
        return Ledger(self._ledger.entries)

    @property
    def secure(self) -> bool:
        return self._secure

    @property
    def gradient_canaries(self) -> GradientCanaries | None:
        """The white-box audit's Dirac canaries (for the DP-SGD engine), or None."""
        return self._canaries

    @property
    def mode(self) -> str:
        """``"private"`` or ``"inf"``: whether releases are clipped and noised."""
        return self._mode

    @property
    def closed(self) -> bool:
        return bool(self._door("probe"))

    def close(self) -> None:
        """Drop the private data: every later access raises and refuses the cell."""
        self._door("close")

    def __len__(self) -> int:
        """N, the number of private records (treated as public, as in DP-SGD practice)."""
        return self._num_records

    # -- randomness -----------------------------------------------------------------------
    def record_seeds(self, ids: Sequence[str], *, purpose: str) -> np.ndarray:
        """One 64-bit seed per record id for ``purpose`` (e.g. ``"dp-sgd/12"``).

        Benchmark mode: a keyed hash of (purpose, id), with a key from the mechanism seed, so
        a record's randomness depends on that record alone and reproduces across runs. Secure
        mode: fresh CSPRNG draws, stored nowhere.

        Args:
            ids: the record ids.
            purpose: what the seeds are for; a distinct purpose gives independent seeds.

        Returns:
            uint64 ``(len(ids),)``.

        Raises:
            GuardClosedError: ``fit`` has returned.
        """
        return self._door().random.record_seeds([str(i) for i in ids], purpose=purpose)

    def noise_normals(self, size: int) -> np.ndarray:
        """``size`` N(0, 1) draws for the mechanism's noise (CSPRNG in secure mode)."""
        return self._door().random.standard_normal(size)

    def noise_seed(self) -> int:
        """A 62-bit seed for a device-side noise generator (benchmark mode only)."""
        random = self._door().random
        if random.secure:
            raise PrivacyError("secure mode draws noise from the CSPRNG: use noise_normals")
        return int(random.integers(2**62, 1)[0])

    # -- access ---------------------------------------------------------------------------
    def raw(self, *, reason: str = "raw access") -> Any:
        """The dataset itself. Records ``NonPrivate``: the ledger's epsilon becomes infinite."""
        vault = self._door()
        self._ledger.append(NonPrivate(reason=reason))
        return vault.dataset

    def _take(self, indices: np.ndarray) -> Any:
        dataset = self._door().dataset
        take = getattr(dataset, "take", None)
        if take is not None:
            return take(indices)
        return [dataset[int(i)] for i in indices]

    def _ids_at(self, indices: np.ndarray) -> list[str]:
        ids = getattr(self._door().dataset, "ids", None)
        if ids is None:
            return [str(int(i)) for i in indices]
        return [str(ids[int(i)]) for i in indices]

    def poisson_batches(
        self,
        *,
        noise_multiplier: float | None,
        sample_rate: float,
        steps: int,
        note: str = "dp-sgd",
    ) -> Iterator[PoissonBatch]:
        """Yield ``steps`` Poisson batches; records ``SubsampledGaussian(sigma, q, steps)`` first
        (``NonPrivate`` under ``inf``, where ``noise_multiplier`` is None).

        The caller promises to clip each record's contribution and to add Gaussian noise of
        std ``noise_multiplier * clip_norm`` to the sum: that is the DP-SGD engine's job
        (:class:`isoeps.privacy.engine.PrivateGradients`). Methods call the engine.

        Args:
            noise_multiplier: sigma of the caller's noise; None under ``inf`` and only there.
            sample_rate: q, each record's inclusion probability per step.
            steps: T, how many batches.
            note: the ledger entry's note, and the purpose of the records' seeds.

        Returns:
            An iterator of :class:`PoissonBatch`; the ledger entry is written before the first.

        Raises:
            PrivacyError: ``noise_multiplier`` does not match the guard's mode (None under a
                private budget, a value under ``inf``), or the guard is closed.
        """
        self._door()
        self._ledger.append(self._mechanism(noise_multiplier, sample_rate, int(steps), note=note))
        return self._batches(sample_rate, int(steps), purpose=note)

    def _mechanism(
        self,
        noise_multiplier: float | None,
        sample_rate: float,
        steps: int,
        *,
        note: str,
        adjacency: str = "add_remove",
    ) -> Mechanism:
        """The ledger entry of one release in this guard's mode; a mismatched call raises."""
        if self._mode == "inf":
            if noise_multiplier is not None:
                raise PrivacyError(
                    f"{note}: this guard runs an 'inf' budget (no clipping, no noise); pass "
                    f"noise_multiplier=None, not {noise_multiplier!r}"
                )
            return NonPrivate(reason=f"{note} ('inf': no clipping, no noise)")
        if noise_multiplier is None:
            raise PrivacyError(
                f"{note}: this guard runs a private budget; a release needs the calibrated "
                "noise multiplier (None is the 'inf' budget's twin)"
            )
        return SubsampledGaussian(
            noise_multiplier, sample_rate, steps, adjacency=adjacency, note=note
        )

    def _batches(self, sample_rate: float, steps: int, *, purpose: str) -> Iterator[PoissonBatch]:
        for step in range(steps):
            mask = self._door().random.poisson_mask(self._num_records, sample_rate)
            indices = np.flatnonzero(mask)
            ids = self._ids_at(indices)
            seeds = self.record_seeds(ids, purpose=f"{purpose}/{step}")
            yield PoissonBatch(
                step=step, records=self._take(indices), size=len(indices), seeds=seeds,
                ids=tuple(ids),
            )  # fmt: skip

    def aggregate(
        self,
        embed: Callable[[Any], Sequence[np.ndarray] | np.ndarray],
        *,
        dim: int,
        sample_rate: float,
        clip_norm: float,
        noise_multiplier: float | None,
        note: str = "aggregation",
    ) -> AggregateRelease:
        """One subsampled Gaussian release of per-record vectors (add/remove, sensitivity C).

        ``embed(records)`` maps the Poisson-sampled records to one ``dim``-vector each (it is
        not called when the subsample is empty: the release is then pure noise). Each vector is
        clipped to L2 norm ``clip_norm`` (a non-finite vector counts as zero); the clipped
        vectors are summed; N(0, sigma^2 C^2) is added per coordinate; the result is divided
        by the constant ``q * N`` (never by the realised sample size, which would leak it).

        Under ``inf`` (``noise_multiplier=None``): the same Poisson subsample, ``NonPrivate``
        in the ledger, no clipping, no noise, the mean over the realised sample.

        Args:
            embed: maps a non-empty subsample of records to their vectors, ``(n, dim)``.
            dim: the length of each vector.
            sample_rate: q, each record's inclusion probability.
            clip_norm: C, the L2 bound of each vector; finite and > 0.
            noise_multiplier: sigma; None under ``inf`` and only there.
            note: the ledger entry's note.

        Returns:
            The released vector with the sample count, noise std and divisor.

        Raises:
            ValueError: ``clip_norm`` is not finite and > 0, or ``embed`` returned another
                shape.
            PrivacyError: ``noise_multiplier`` does not match the guard's mode, or the guard is
                closed.
        """
        _check_clip_norm(clip_norm)
        self._door()
        self._ledger.append(self._mechanism(noise_multiplier, sample_rate, 1, note=note))
        indices = np.flatnonzero(self._door().random.poisson_mask(self._num_records, sample_rate))
        if len(indices):
            vectors = np.asarray(embed(self._take(indices)), dtype=np.float64)
        else:
            vectors = np.zeros((0, dim))
        if vectors.shape != (len(indices), dim):
            raise ValueError(
                f"embed must return one {dim}-vector per record, got shape {vectors.shape}"
            )
        if noise_multiplier is None:
            return _mean_release(vectors, dim)
        return self._release(vectors, clip_norm, noise_multiplier, sample_rate * self._num_records)

    def aggregate_groups(
        self,
        embed: Callable[[Any, np.ndarray], Sequence[np.ndarray] | np.ndarray],
        *,
        dim: int,
        num_groups: int,
        sample_rate: float,
        clip_norm: float,
        noise_multiplier: float | None,
        id_of: Callable[[Any], str] | None = None,
        note: str = "grouped aggregation",
    ) -> AggregateRelease:
        """One subsampled Gaussian release over ``num_groups`` fixed hash groups.

        Mechanism: G = ``num_groups`` slots, fixed in advance from public configuration and
        never from the private data. Record r belongs to slot :func:`group_of` (id(r), G), a
        function of its own id alone. Each slot is Poisson-sampled at rate q.
        ``embed(records, groups)`` gets the records of the sampled non-empty slots and
        ``groups``, each record's position among them (0..k-1), and returns one
        ``dim``-vector per slot, ``(k, dim)``. A sampled empty slot contributes the zero
        vector. Vectors are clipped to C (non-finite ones count as zero), summed,
        N(0, sigma^2 C^2) is added and the sum is divided by the constant ``q G``.

        Adjacency and sensitivity. The privacy unit is one image, add/remove: D' = D + {r}.
        Because G does not depend on D and r's slot depends on r alone, every record of D keeps
        its slot in D', and exactly one slot, s = group_of(r), changes content. The sampling
        of slots is the same in both worlds (it depends on G and q only). So the two outputs
        differ only in slot s's clipped vector, from v to v' with |v|, |v'| <= C (v = 0 when
        s was empty in D): a replace-one change of one slot of a fixed, Poisson-sampled
        population, with L2 shift |v - v'| <= 2C, present with probability q. That is
        ``SubsampledGaussian(sigma, q, 1, adjacency="replace_one")`` with noise std sigma C,
        which pld's REPLACE_ONE relation accounts (it models the 2C shift itself; see
        ``SubsampledGaussian``). Replacing one image by another (a new id) is two add/remove
        steps and may move two slots: it is covered by group privacy, not by this entry.
        (A slot count computed from N, as ceil(N / g), would break all of this: N -> N + 1
        can change G and move almost every record.)

        Args:
            embed: ``(records, groups) -> (k, dim)`` vectors, one per sampled non-empty slot.
            dim: the vectors' dimension.
            num_groups: G, fixed from public configuration.
            sample_rate: q, each slot's Poisson sampling rate.
            clip_norm: C.
            noise_multiplier: sigma; None under ``inf`` (as in :meth:`aggregate`): the mean
                over the sampled non-empty slots, ``NonPrivate`` in the ledger.
            id_of: a record's id (default: the dataset's ``ids``).
            note: the ledger entry's note.

        Returns:
            The release: its value, the sampled slot count, the noise std and the divisor.
        """
        self._check_group_args(clip_norm, num_groups, id_of)
        self._ledger.append(  # before any record is read
            self._mechanism(noise_multiplier, sample_rate, 1, note=note, adjacency="replace_one")
        )
        vectors, filled = self._group_vectors(embed, dim, num_groups, sample_rate, id_of)
        if noise_multiplier is None:
            return _mean_release(vectors[:filled], dim)
        return self._release(vectors, clip_norm, noise_multiplier, sample_rate * num_groups)

    def _check_group_args(
        self, clip_norm: float, num_groups: int, id_of: Callable[[Any], str] | None
    ) -> None:
        """Refuse a bad clip norm or group count, and a dataset without ids (reads no record)."""
        _check_clip_norm(clip_norm)
        if not isinstance(num_groups, int) or isinstance(num_groups, bool) or num_groups < 1:
            raise ValueError(f"num_groups must be an integer >= 1, got {num_groups!r}")
        dataset_ids = getattr(self._door().dataset, "ids", None)
        if id_of is None and dataset_ids is None:
            raise ValueError(
                "aggregate_groups needs record ids: pass id_of or wrap a dataset with `ids`"
            )

    def _group_vectors(
        self,
        embed: Callable[[Any, np.ndarray], Sequence[np.ndarray] | np.ndarray],
        dim: int,
        num_groups: int,
        sample_rate: float,
        id_of: Callable[[Any], str] | None,
    ) -> tuple[np.ndarray, int]:
        """Poisson-sample the slots and embed the records of the non-empty sampled ones: one
        row per sampled slot (the filled ones first, the empty ones zero) and the filled count."""
        labels = np.array([group_of(i, num_groups) for i in self._ids(id_of)], dtype=np.int64)
        chosen = np.flatnonzero(self._door().random.poisson_mask(num_groups, sample_rate))
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
        return vectors, len(filled)

    def _release(
        self, vectors: np.ndarray, clip_norm: float, noise_multiplier: float, divisor: float
    ) -> AggregateRelease:
        return aggregate_release(
            vectors,
            clip_norm=clip_norm,
            noise_multiplier=noise_multiplier,
            divisor=divisor,
            random=self._door().random,
        )

    def _ids(self, id_of: Callable[[Any], str] | None) -> list[str]:
        dataset = self._door().dataset
        if id_of is None:
            return [str(i) for i in dataset.ids]
        return [str(id_of(dataset[i])) for i in range(self._num_records)]


def _mean_release(vectors: np.ndarray, dim: int) -> AggregateRelease:
    """The ``inf`` twin's output: the plain mean of what was sampled (zero when nothing was)."""
    value = vectors.mean(axis=0) if len(vectors) else np.zeros(dim)
    return AggregateRelease(
        value=value, sampled=len(vectors), noise_std=0.0, divisor=float(len(vectors))
    )


def _check_clip_norm(clip_norm: float) -> None:
    if not clip_norm > 0 or math.isnan(clip_norm) or math.isinf(clip_norm):
        raise ValueError(f"clip_norm must be a finite number > 0, got {clip_norm!r}")


def group_of(record_id: str, num_groups: int) -> int:
    """The group of a record: sha256 of its id, mod ``num_groups``.

    Stable across runs and processes (unlike ``hash``), and a function of this id alone.

    Args:
        record_id: the record's id (converted with ``str``).
        num_groups: how many groups; >= 1.

    Returns:
        The group index, in [0, num_groups).
    """
    digest = hashlib.sha256(str(record_id).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % num_groups


def clip_rows(vectors: np.ndarray, clip_norm: float) -> np.ndarray:
    """Scale each row to L2 norm at most ``clip_norm``; a row with any non-finite entry becomes
    zero (one inf or NaN would otherwise turn the whole sum into NaN and reveal the record).
    How many rows that was is not reported anywhere: it is a statistic of the private data.

    Args:
        vectors: ``(n, d)``, converted to float64.
        clip_norm: C, the L2 bound.

    Returns:
        The clipped rows, float64 ``(n, d)``.
    """
    vectors = np.asarray(vectors, dtype=np.float64)
    finite = np.isfinite(vectors).all(axis=1, keepdims=True)
    safe = np.where(finite, vectors, 0.0)
    norms = np.linalg.norm(safe, axis=1, keepdims=True)
    return safe * np.minimum(1.0, clip_norm / np.maximum(norms, 1e-12))


def aggregate_release(
    vectors: np.ndarray,
    *,
    clip_norm: float,
    noise_multiplier: float,
    divisor: float,
    random: MechanismRandom,
) -> AggregateRelease:
    """Clip, sum, add N(0, (sigma C)^2), divide by the constant ``divisor``.

    Under both adjacencies the noise std is sigma C (see ``SubsampledGaussian``).

    Args:
        vectors: the sampled records' vectors, ``(n, d)``.
        clip_norm: C, the L2 bound of each vector.
        noise_multiplier: sigma.
        divisor: the constant the noisy sum is divided by (e.g. ``q N``), never the
            realised sample size.
        random: the mechanism randomness the normals come from.

    Returns:
        The noisy mean with ``n``, the noise std sigma C and the divisor.
    """
    total = clip_rows(vectors, clip_norm).sum(axis=0)
    noise_std = noise_multiplier * clip_norm
    noisy = total + noise_std * random.standard_normal(total.shape[0])
    return AggregateRelease(
        value=noisy / divisor, sampled=int(vectors.shape[0]), noise_std=noise_std, divisor=divisor
    )
