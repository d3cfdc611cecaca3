"""The guard as a boundary (issue: hardening): fixed hash groups whose movement stays within the
accounted bound, non-finite contributions, per-record randomness keyed to the record, and the
doors a careless or casually malicious method would use."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from isoeps.accountants import Ledger, NonPrivate
from isoeps.errors import PrivacyError
from isoeps.privacy.engine import check_standard_normal, gaussian_noise
from isoeps.privacy.guard import GuardClosedError, PrivateData, clip_rows
from isoeps.privacy.per_sample import clip_and_sum
from isoeps.privacy.rng import mechanism_seed

DIM = 3


class Rows:
    """Records with ids; record i's vector is row i."""

    def __init__(self, vectors: np.ndarray, ids: list[str]) -> None:
        self.vectors = np.asarray(vectors, dtype=np.float64)
        self.ids = list(ids)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> np.ndarray:
        return self.vectors[index]

    def take(self, indices: np.ndarray) -> Rows:
        indices = np.asarray(indices, dtype=np.int64)
        return Rows(self.vectors[indices], [self.ids[i] for i in indices])


def _group_sum(data: Rows, *, num_groups: int, clip: float) -> np.ndarray:
    """The undivided, noiseless (sigma ~ 0), q = 1 grouped release: each group's mean vector."""

    def embed(records: Rows, groups: np.ndarray) -> np.ndarray:
        return np.stack(
            [records.vectors[groups == g].mean(axis=0) for g in range(groups.max() + 1)]
        )

    release = PrivateData(data, seed=0).aggregate_groups(
        embed,
        dim=DIM,
        num_groups=num_groups,
        sample_rate=1.0,
        clip_norm=clip,
        noise_multiplier=1e-12,
    )
    return release.value * release.divisor


def test_grouped_release_moves_at_most_2c_for_one_added_or_removed_image() -> None:
    # The worst movement over N -> N + 1 (every multiple of the nominal group size included,
    # where ceil(N / g) used to change G), N -> N - 1, and replacements (two add/remove steps).
    clip, g = 1.0, 4
    rng = np.random.default_rng(0)
    worst_neighbour, worst_replace = 0.0, 0.0
    for n in range(8, 41):
        num_groups = 10  # fixed in advance; would have been ceil(n / g)
        ids = [f"img-{i}" for i in range(n + 1)]
        vectors = rng.normal(size=(n + 1, DIM)) * 5
        base = Rows(vectors[:n], ids[:n])
        added = Rows(vectors, ids)
        removed = base.take(np.delete(np.arange(n), int(rng.integers(n))))
        replaced = Rows(
            np.vstack([vectors[: n - 1], rng.normal(size=(1, DIM)) * 5]),
            ids[: n - 1] + [f"new-{n}"],
        )
        reference = _group_sum(base, num_groups=num_groups, clip=clip)
        for neighbour in (added, removed):
            move = np.linalg.norm(
                _group_sum(neighbour, num_groups=num_groups, clip=clip) - reference
            )
            worst_neighbour = max(worst_neighbour, move)
        move = np.linalg.norm(_group_sum(replaced, num_groups=num_groups, clip=clip) - reference)
        worst_replace = max(worst_replace, move)
    assert worst_neighbour <= 2 * clip + 1e-9  # the accounted replace-one shift of one group
    assert worst_replace <= 4 * clip + 1e-9  # two neighbouring steps
    assert worst_neighbour > clip  # the search did reach the regime the bound is about
    del g


def test_a_slot_count_from_n_would_have_broken_the_bound() -> None:
    # The defect the fixed G removes: with G = ceil(N / g), N = 400 -> 401 at g = 4 reshuffles.
    clip, g, n = 1.0, 4, 400
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(n + 1, DIM)) * 5
    ids = [f"img-{i}" for i in range(n + 1)]
    before = _group_sum(Rows(vectors[:n], ids[:n]), num_groups=math.ceil(n / g), clip=clip)
    after = _group_sum(Rows(vectors, ids), num_groups=math.ceil((n + 1) / g), clip=clip)
    assert np.linalg.norm(after - before) > 2 * clip


def test_non_finite_vectors_count_as_zero_in_a_release() -> None:
    rows = np.array([[1.0, 0, 0], [np.inf, 0, 0], [np.nan, 1, 1], [0, 3.0, 4.0]])
    np.testing.assert_array_equal(clip_rows(rows, 1.0)[1:3], 0.0)
    data = Rows(rows, [f"r{i}" for i in range(4)])
    release = PrivateData(data, seed=0).aggregate(
        lambda records: records.vectors,
        dim=DIM,
        sample_rate=1.0,
        clip_norm=1.0,
        noise_multiplier=1e-12,
    )
    assert np.isfinite(release.value).all()
    np.testing.assert_allclose(release.value * release.divisor, [1.0, 0.6, 0.8])


def test_non_finite_per_sample_gradients_count_as_zero() -> None:
    grads = {"w": torch.tensor([[3.0, 4.0], [float("inf"), 0.0], [float("nan"), 1.0]])}
    total = clip_and_sum(grads, clip_norm=1.0)["w"]
    assert torch.isfinite(total).all()
    torch.testing.assert_close(total, torch.tensor([0.6, 0.8]), atol=1e-5, rtol=0)


def _dpsgd_seeds(ids: list[str], seed: int = 7) -> dict[str, int]:
    data = Rows(np.zeros((len(ids), DIM)), ids)
    guard = PrivateData(data, seed=seed)
    batch = next(guard.poisson_batches(noise_multiplier=1.0, sample_rate=1.0, steps=1))
    return dict(zip(batch.records.ids, batch.seeds.tolist()))


def test_per_record_randomness_is_keyed_to_the_record_not_its_position() -> None:
    ids = [f"img-{i}" for i in range(20)]
    before = _dpsgd_seeds(ids)
    after = _dpsgd_seeds(["intruder", *ids])  # every other record moved one position
    assert all(after[i] == before[i] for i in ids)
    assert len(set(before.values())) == len(ids)


def test_secure_mode_per_record_randomness_comes_from_the_csprng() -> None:
    data = Rows(np.zeros((4, DIM)), ["a", "b", "c", "d"])
    first = PrivateData(data, seed=None, secure=True).record_seeds(data.ids, purpose="x")
    second = PrivateData(data, seed=None, secure=True).record_seeds(data.ids, purpose="x")
    assert not np.array_equal(first, second)


def test_guard_closes_and_late_access_is_recorded_for_the_harness() -> None:
    journal = Ledger()
    guard = PrivateData(Rows(np.zeros((5, DIM)), list("abcde")), seed=0, ledger=journal)
    guard.close()
    for attempt in (
        lambda: guard.raw(),
        lambda: guard.record_seeds(["a"], purpose="x"),
        lambda: guard.aggregate(
            lambda r: r.vectors, dim=DIM, sample_rate=1.0, clip_norm=1.0, noise_multiplier=1.0
        ),
    ):
        with pytest.raises(GuardClosedError):
            attempt()
    assert guard.closed
    assert any(isinstance(entry, NonPrivate) for entry in journal)


def test_batches_drawn_after_close_raise() -> None:
    guard = PrivateData(Rows(np.zeros((5, DIM)), list("abcde")), seed=0)
    batches = guard.poisson_batches(noise_multiplier=1.0, sample_rate=1.0, steps=3)
    next(batches)
    guard.close()
    with pytest.raises(GuardClosedError):
        next(batches)


def test_the_guard_exposes_no_private_state_and_refuses_assignment() -> None:
    data = Rows(np.zeros((5, DIM)), list("abcde"))
    guard = PrivateData(data, seed=0)
    assert not hasattr(guard, "__dict__")
    reachable = [getattr(guard, name, None) for name in dir(guard)]
    assert not any(value is data for value in reachable)
    for name in ("_dataset", "_random", "_ledger", "random"):
        with pytest.raises(AttributeError):
            setattr(guard, name, None)


def test_the_ledger_a_method_sees_is_a_copy() -> None:
    journal = Ledger()
    guard = PrivateData(Rows(np.zeros((5, DIM)), list("abcde")), seed=0, ledger=journal)
    guard.aggregate(
        lambda r: r.vectors, dim=DIM, sample_rate=1.0, clip_norm=1.0, noise_multiplier=1.0
    )
    seen = guard.ledger
    seen._entries.clear()  # a method emptying what it was handed
    assert len(journal) == 1 and len(guard.ledger) == 1


def test_mechanism_seed_is_not_a_method_stream() -> None:
    from isoeps.methods.base import RNG_PURPOSES, MethodContext

    ctx = MethodContext(seed=3)
    assert "noise" not in RNG_PURPOSES
    assert 3 not in vars(ctx).values() and not hasattr(ctx, "seed")  # the root is not kept
    streams = {ctx.seed_for(p) for p in RNG_PURPOSES}
    assert mechanism_seed(3) not in streams
    with pytest.raises(ValueError, match="unknown RNG purpose"):
        ctx.seed_for("noise")


def test_a_degenerate_noise_source_is_refused() -> None:
    check_standard_normal(torch.randn(10_000, generator=torch.Generator().manual_seed(0)))
    with pytest.raises(PrivacyError, match="sanity check"):
        check_standard_normal(torch.zeros(10_000))
    with pytest.raises(PrivacyError, match="sanity check"):
        check_standard_normal(torch.full((10_000,), 0.01))


def test_patched_torch_noise_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    guard = PrivateData(Rows(np.zeros((5, DIM)), list("abcde")), seed=0)
    like = [torch.zeros(100, 10)]
    assert gaussian_noise(guard, like, std=1.0)[0].std() > 0.5
    monkeypatch.setattr(torch, "randn", lambda *a, **k: torch.zeros(1000))
    with pytest.raises(PrivacyError):
        gaussian_noise(guard, like, std=1.0)
