"""The PrivateData guard: every access shows in the ledger before any record is touched."""

from __future__ import annotations

import math

import numpy as np
import pytest

from isoeps.accountants import Ledger, NonPrivate, SubsampledGaussian
from isoeps.errors import PrivacyError
from isoeps.privacy.guard import PrivateData, aggregate_release, clip_rows
from isoeps.privacy.rng import MechanismRandom


class CountingDataset:
    """A sized, indexable dataset that counts how many records were read."""

    def __init__(self, n: int) -> None:
        self.values = np.arange(n, dtype=np.float64)
        self.reads = 0

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, index: int) -> float:
        self.reads += 1
        return float(self.values[index])


def test_fresh_guard_has_empty_ledger_and_reads_nothing():
    data = CountingDataset(100)
    guard = PrivateData(data, seed=0)
    assert guard.ledger.is_empty
    assert len(guard) == 100
    assert data.reads == 0


def test_raw_access_records_non_private():
    guard = PrivateData(CountingDataset(10), seed=0)
    guard.raw(reason="test")
    assert guard.ledger.entries == (NonPrivate(reason="test"),)
    assert not guard.ledger.is_private


def test_poisson_batches_record_mechanism_before_reading():
    data = CountingDataset(1000)
    guard = PrivateData(data, seed=1)
    batches = guard.poisson_batches(noise_multiplier=1.5, sample_rate=0.05, steps=4)
    # Recorded as soon as the accessor is called, before the first record is read.
    assert guard.ledger.entries == (SubsampledGaussian(1.5, 0.05, 4),)
    assert data.reads == 0
    sizes = [batch.size for batch in batches]
    assert len(sizes) == 4
    assert data.reads == sum(sizes)


def test_poisson_batches_are_poisson_and_seeded():
    def sizes(seed: int) -> list[int]:
        guard = PrivateData(CountingDataset(2000), seed=seed)
        return [
            b.size for b in guard.poisson_batches(noise_multiplier=1, sample_rate=0.1, steps=200)
        ]

    first, again, other = sizes(3), sizes(3), sizes(4)
    assert first == again and first != other
    # Binomial(2000, 0.1): mean 200, variance 180.
    assert abs(np.mean(first) - 200) < 4 * math.sqrt(180 / 200)
    assert 0.5 * 180 < np.var(first) < 1.6 * 180


def test_take_is_used_when_available():
    class Batched(CountingDataset):
        def take(self, indices):
            return self.values[indices]

    guard = PrivateData(Batched(50), seed=0)
    batch = next(iter(guard.poisson_batches(noise_multiplier=1, sample_rate=0.5, steps=1)))
    assert isinstance(batch.records, np.ndarray) and len(batch.records) == batch.size


def test_aggregate_records_one_release_and_divides_by_constant():
    data = CountingDataset(400)
    guard = PrivateData(data, seed=0)
    release = guard.aggregate(
        lambda records: np.ones((len(records), 3)),
        dim=3,
        sample_rate=0.25,
        clip_norm=1.0,
        noise_multiplier=2.0,
    )
    assert guard.ledger.entries == (SubsampledGaussian(2.0, 0.25, 1),)
    assert release.divisor == pytest.approx(100.0)
    assert release.noise_std == pytest.approx(2.0)
    assert release.value.shape == (3,)


def test_aggregate_rejects_wrong_embedding_shape():
    guard = PrivateData(CountingDataset(100), seed=0)
    with pytest.raises(ValueError, match="3-vector"):
        guard.aggregate(
            lambda r: np.ones((len(r), 2)),
            dim=3,
            sample_rate=0.5,
            clip_norm=1.0,
            noise_multiplier=1.0,
        )


def test_clip_rows_bounds_every_norm():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(50, 8)) * rng.uniform(0.1, 10, size=(50, 1))
    clipped = clip_rows(vectors, 1.5)
    norms = np.linalg.norm(clipped, axis=1)
    assert norms.max() <= 1.5 + 1e-9
    small = np.linalg.norm(vectors, axis=1) <= 1.5
    np.testing.assert_allclose(clipped[small], vectors[small])


def test_aggregate_release_noise_has_calibrated_std():
    random = MechanismRandom(seed=0)
    vectors = np.zeros((10, 20000))
    release = aggregate_release(
        vectors, clip_norm=0.5, noise_multiplier=3.0, divisor=1.0, random=random
    )
    assert np.std(release.value) == pytest.approx(1.5, rel=0.03)


def test_secure_mode_draws_without_seed():
    random = MechanismRandom(seed=None, secure=True)
    draws = random.standard_normal(50000)
    assert abs(draws.mean()) < 0.03 and abs(draws.std() - 1) < 0.03
    uniforms = random.uniform(50000)
    assert 0 <= uniforms.min() and uniforms.max() < 1
    guard = PrivateData(CountingDataset(100), seed=None, secure=True)
    assert guard.secure


def test_benchmark_mode_requires_seed():
    with pytest.raises(ValueError, match="seed"):
        MechanismRandom(seed=None)


def test_method_cannot_read_without_ledger_entry():
    """Whatever path a method takes to records, the ledger shows it."""
    data = CountingDataset(100)
    guard = PrivateData(data, seed=0)
    paths = [
        lambda: guard.raw(),
        lambda: list(guard.poisson_batches(noise_multiplier=1, sample_rate=0.1, steps=1)),
        lambda: guard.aggregate(
            lambda r: np.zeros((len(r), 1)), dim=1, sample_rate=0.1, clip_norm=1, noise_multiplier=1
        ),
    ]
    for index, path in enumerate(paths, start=1):
        path()
        assert len(guard.ledger) == index
    assert not hasattr(guard, "dataset") and not hasattr(guard, "data")


def test_ledger_round_trips_json():
    ledger = Ledger([SubsampledGaussian(1.0, 0.01, 100), NonPrivate(reason="x")])
    assert Ledger.from_json(ledger.to_json()) == ledger


def test_the_guard_owns_the_mode_and_refuses_a_mismatched_release():
    private = PrivateData(CountingDataset(50), seed=0)
    with pytest.raises(PrivacyError, match="needs the calibrated noise multiplier"):
        private.poisson_batches(noise_multiplier=None, sample_rate=0.1, steps=2)
    inf = PrivateData(CountingDataset(50), mode="inf", seed=0)
    with pytest.raises(PrivacyError, match="'inf' budget"):
        inf.aggregate(
            lambda r: np.zeros((len(r), 2)),
            dim=2,
            sample_rate=0.5,
            clip_norm=1.0,
            noise_multiplier=1.0,
        )
    assert private.ledger.is_empty and inf.ledger.is_empty
    with pytest.raises(ValueError, match="mode must be one of"):
        PrivateData(CountingDataset(5), mode="public", seed=0)


def test_an_inf_guard_draws_the_same_batches_as_a_private_one():
    private = PrivateData(CountingDataset(200), seed=3)
    inf = PrivateData(CountingDataset(200), mode="inf", seed=3)
    noisy = private.poisson_batches(noise_multiplier=1.0, sample_rate=0.1, steps=4)
    plain = inf.poisson_batches(noise_multiplier=None, sample_rate=0.1, steps=4)
    for a, b in zip(noisy, plain, strict=True):
        assert a.records == b.records and np.array_equal(a.seeds, b.seeds)
    assert isinstance(inf.ledger.entries[0], NonPrivate) and inf.mode == "inf"
    assert isinstance(private.ledger.entries[0], SubsampledGaussian)
