"""The grouped DPAgg-TI release, ``PrivateData.aggregate_groups``: groups by a hash of the
record id, replace-one ledger entry, noise std sigma C, constant divisor q G, accounting."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
from scipy import stats

from isoeps.accountants import AccountingInputError, SubsampledGaussian, calibrate, epsilon
from isoeps.privacy.guard import PrivateData, group_of

DIM = 4


class Rows:
    """N records with ids; record i's vector is row i. Records every ``take``."""

    def __init__(self, vectors: np.ndarray, ids: list[str] | None = None) -> None:
        self.vectors = vectors
        self.ids = ids if ids is not None else [f"rec-{i}" for i in range(len(vectors))]
        self.taken: list[np.ndarray] = []

    def __len__(self) -> int:
        return len(self.vectors)

    def __getitem__(self, index: int) -> np.ndarray:
        return self.vectors[index]

    def take(self, indices: np.ndarray) -> np.ndarray:
        self.taken.append(np.asarray(indices))
        return self.vectors[indices]


def _mean_by_group(rows: np.ndarray, groups: np.ndarray) -> np.ndarray:
    return np.stack([rows[groups == g].mean(axis=0) for g in range(groups.max() + 1)])


def test_group_of_is_a_stable_sha256_of_the_id_alone() -> None:
    # Pinned: the assignment never changes across runs, processes or versions.
    assert [group_of(f"rec-{i}", 7) for i in range(8)] == [0, 3, 4, 5, 2, 2, 4, 4]
    digest = hashlib.sha256(b"rec-1").digest()
    assert group_of("rec-1", 1000) == int.from_bytes(digest[:8], "big") % 1000
    counts = np.bincount([group_of(f"id{i}", 10) for i in range(5000)], minlength=10)
    assert counts.min() > 400  # roughly uniform over the groups


def _release_groups(data: Rows, *, group_size: int, id_of=None) -> list[list[int]]:
    """Run one q = 1 release; return the dataset indices of each group handed to embed."""
    seen: list[list[int]] = []

    def embed(records: np.ndarray, groups: np.ndarray) -> np.ndarray:
        taken = data.taken[-1]
        seen.extend([list(taken[groups == g]) for g in range(groups.max() + 1)])
        return np.zeros((groups.max() + 1, DIM))

    PrivateData(data, seed=0).aggregate_groups(
        embed,
        dim=DIM,
        num_groups=math.ceil(len(data) / group_size),
        sample_rate=1.0,
        clip_norm=1.0,
        noise_multiplier=1.0,
        id_of=id_of,
    )
    return seen


def test_groups_are_the_id_hash_classes() -> None:
    n, size = 30, 3
    data = Rows(np.ones((n, DIM)))
    num_groups = math.ceil(n / size)
    labels = [group_of(i, num_groups) for i in data.ids]
    groups = _release_groups(data, group_size=size)
    assert sorted(map(sorted, groups)) == sorted(
        sorted(np.flatnonzero(np.array(labels) == g)) for g in set(labels)
    )


def test_a_records_group_does_not_depend_on_the_other_records() -> None:
    # "alice" keeps her group (and her group keeps its other hash-mates) whatever the other
    # records are and wherever she sits; only G, fixed in advance, is shared.
    n, size = 24, 4
    num_groups = math.ceil(n / size)
    for seed in range(3):
        rng = np.random.default_rng(seed)
        ids = [f"other-{seed}-{i}" for i in range(n - 1)]
        ids.insert(int(rng.integers(n)), "alice")
        data = Rows(np.ones((n, DIM)), ids)
        (group,) = [g for g in _release_groups(data, group_size=size) if ids.index("alice") in g]
        assert {group_of(ids[i], num_groups) for i in group} == {group_of("alice", num_groups)}


def test_id_of_is_used_when_given() -> None:
    data = Rows(np.ones((12, DIM)))
    data.ids = None
    guard = PrivateData(data, seed=0)
    with pytest.raises(ValueError, match="needs record ids"):
        guard.aggregate_groups(
            lambda r, g: np.zeros((g.max() + 1, DIM)),
            dim=DIM,
            num_groups=6,
            sample_rate=1.0,
            clip_norm=1.0,
            noise_multiplier=1.0,
        )
    assert guard.ledger.is_empty  # refused before spending
    groups = _release_groups(data, group_size=4, id_of=lambda record: f"custom-{record[0]}")
    # Row i's custom id is custom-1.0 for every i: one hash class, one group.
    assert len(groups) == 1 and sorted(groups[0]) == list(range(12))


def test_ledger_entry_is_replace_one_and_recorded_before_any_record() -> None:
    data = Rows(np.zeros((20, DIM)))
    guard = PrivateData(data, seed=0)

    def embed(records: np.ndarray, groups: np.ndarray) -> np.ndarray:
        (entry,) = guard.ledger.entries
        assert entry == SubsampledGaussian(0.8, 0.5, 1, adjacency="replace_one")
        return np.zeros((groups.max() + 1, DIM))

    guard.aggregate_groups(
        embed, dim=DIM, num_groups=10, sample_rate=0.5, clip_norm=1.0, noise_multiplier=0.8
    )
    assert guard.ledger.adjacency == "replace_one"


def test_each_group_is_one_clipped_vector_and_the_divisor_is_q_g() -> None:
    # Huge vectors, negligible noise: the undivided release is (number of sampled non-empty
    # groups) * C in the all-ones direction, and the divisor q G never varies.
    n, size, q, clip = 50, 4, 0.3, 0.5
    unit = np.ones(DIM) / np.sqrt(DIM)
    data = Rows(np.tile(100 * unit, (n, 1)))
    guard = PrivateData(data, seed=2)
    num_groups = math.ceil(n / size)
    realised = set()
    for _ in range(30):
        sizes: list[int] = []

        def embed(records: np.ndarray, groups: np.ndarray, sizes=sizes) -> np.ndarray:
            sizes.append(groups.max() + 1)
            return _mean_by_group(records, groups)

        release = guard.aggregate_groups(
            embed,
            dim=DIM,
            num_groups=num_groups,
            sample_rate=q,
            clip_norm=clip,
            noise_multiplier=1e-9,
        )
        assert release.divisor == pytest.approx(q * num_groups)
        k = sizes[0] if sizes else 0
        np.testing.assert_allclose(release.value * release.divisor, k * clip * unit, atol=1e-6)
        realised.add(release.sampled)
    assert len(realised) > 1


def test_groups_are_poisson_sampled_whole() -> None:
    n, size, q, trials = 60, 3, 0.2, 400
    data = Rows(np.ones((n, DIM)))
    guard = PrivateData(data, seed=4)
    num_groups = math.ceil(n / size)
    labels = np.array([group_of(i, num_groups) for i in data.ids])
    hits = np.zeros(num_groups)
    for _ in range(trials):
        before = len(data.taken)
        guard.aggregate_groups(
            lambda r, g: np.zeros((g.max() + 1, DIM)),
            dim=DIM,
            num_groups=num_groups,
            sample_rate=q,
            clip_norm=1.0,
            noise_multiplier=1.0,
        )
        if len(data.taken) > before:
            taken = data.taken[-1]
            picked = np.unique(labels[taken])
            # Whole groups: every member of a picked group is taken, nothing else.
            assert sorted(taken) == sorted(np.flatnonzero(np.isin(labels, picked)))
            hits[picked] += 1
    filled = np.bincount(labels, minlength=num_groups) > 0
    rates = hits[filled] / trials
    assert rates.mean() == pytest.approx(
        q, abs=4 * math.sqrt(q * (1 - q) / (trials * filled.sum()))
    )


def test_noise_std_is_sigma_times_c() -> None:
    # Zero vectors: the undivided release is pure N(0, (sigma C)^2) noise.
    sigma, clip = 1.3, 0.4
    guard = PrivateData(Rows(np.zeros((10, DIM))), seed=3)
    draws = []
    for _ in range(2000):
        release = guard.aggregate_groups(
            lambda r, g: np.zeros((g.max() + 1, DIM)),
            dim=DIM,
            num_groups=5,
            sample_rate=0.5,
            clip_norm=clip,
            noise_multiplier=sigma,
        )
        assert release.noise_std == pytest.approx(sigma * clip)
        draws.append(release.value * release.divisor)
    standardised = np.concatenate(draws) / (sigma * clip)
    assert np.std(standardised) == pytest.approx(1.0, abs=0.02)
    assert stats.kstest(standardised, "norm").pvalue > 1e-3


def test_calibrated_ledger_reaccounts_within_target_under_pld_only() -> None:
    target, delta, q = 2.0, 1e-5, 0.25
    sigma = calibrate(target, delta, q, 1, "pld", adjacency="replace_one")
    guard = PrivateData(Rows(np.zeros((16, DIM))), seed=0)
    guard.aggregate_groups(
        lambda r, g: np.zeros((g.max() + 1, DIM)),
        dim=DIM,
        num_groups=8,
        sample_rate=q,
        clip_norm=1.0,
        noise_multiplier=sigma,
    )
    assert epsilon(guard.ledger, delta, "pld") <= target
    with pytest.raises(AccountingInputError, match="use accountant 'pld'"):
        epsilon(guard.ledger, delta, "prv")


def test_embed_shape_and_num_groups_are_checked() -> None:
    guard = PrivateData(Rows(np.zeros((10, DIM))), seed=0)
    with pytest.raises(ValueError, match="one 4-vector per group"):
        guard.aggregate_groups(
            lambda r, g: np.zeros((len(r), DIM)),
            dim=DIM,
            num_groups=2,
            sample_rate=1.0,
            clip_norm=1.0,
            noise_multiplier=1.0,
        )
    with pytest.raises(ValueError, match="num_groups.*0"):
        guard.aggregate_groups(
            lambda r, g: r,
            dim=DIM,
            num_groups=0,
            sample_rate=1.0,
            clip_norm=1.0,
            noise_multiplier=1.0,
        )
