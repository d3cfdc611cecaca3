"""Dirac gradient canaries in the DP-SGD engine: coordinates, the swap of a canary record's
gradient for its Dirac, the scores, and the errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from isoeps.accountants import PrivacyBudget
from isoeps.errors import PrivacyError
from isoeps.privacy import PrivateData
from isoeps.privacy.engine import DPSGDConfig, PrivateGradients
from isoeps.privacy.gradient_canaries import GradientCanaries

DIM = 6


class Rows:
    """Records: one feature row each, with ids (canaries are ``c<i>``)."""

    def __init__(self, x: np.ndarray, ids: list[str]) -> None:
        self.x, self.ids = x, ids

    def __len__(self) -> int:
        return len(self.x)

    def take(self, indices) -> Rows:
        indices = np.asarray(indices, dtype=np.int64)
        return Rows(self.x[indices], [self.ids[i] for i in indices])


def _loss(module: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return module(batch["x"]).squeeze(-1)  # per-example gradient of weight row = x


def _collate(records: Rows, rngs) -> dict[str, torch.Tensor]:
    return {"x": torch.as_tensor(records.x, dtype=torch.float32)}


def _gradients(rows: Rows, canaries: GradientCanaries, *, budget: PrivacyBudget, clip: float):
    guard = PrivateData(rows, mode=budget.mode, seed=3, gradient_canaries=canaries)
    config = DPSGDConfig(clip_norm=clip, expected_batch_size=len(rows), steps=1)
    module = nn.Linear(DIM, 1, bias=False)
    run = PrivateGradients(
        guard=guard, module=module, loss_fn=_loss, collate=_collate, config=config,
        budget=budget, accountants=["prv"],
    )  # fmt: skip
    return run, list(run)


def test_coordinates_are_distinct_seeded_and_inside_the_parameters() -> None:
    params = {"a": nn.Parameter(torch.zeros(3, 4)), "b": nn.Parameter(torch.zeros(5))}
    first, again, other = (
        GradientCanaries(ids=[f"c{i}" for i in range(10)], seed=s) for s in (1, 1, 2)
    )
    for canaries in (first, again, other):
        canaries.bind(params)
    assert first.coordinates == again.coordinates != other.coordinates
    assert len(set(first.coordinates)) == 10
    assert all(0 <= flat < params[name].numel() for name, flat in first.coordinates)


def test_a_canary_records_gradient_is_replaced_by_its_dirac() -> None:
    # 'inf' (no clipping, no noise) and q = 1: every record is in the one batch, so the
    # gradient is exactly the ordinary records' sum plus C at each included canary's coordinate.
    rng = np.random.default_rng(0)
    ordinary = rng.normal(size=(5, DIM))
    canary_rows = 100 * np.ones((2, DIM))  # huge: their own gradient would show if kept
    ids = [f"r{i}" for i in range(5)] + ["c0", "c2"]  # c1 and c3 are not in the split
    rows = Rows(np.concatenate([ordinary, canary_rows]), ids)
    canaries = GradientCanaries(ids=["c0", "c1", "c2", "c3"], seed=7)
    run, (step,) = _gradients(rows, canaries, budget=PrivacyBudget.parse("inf"), clip=2.0)
    expected = torch.as_tensor(ordinary.sum(axis=0), dtype=torch.float32).reshape(1, DIM)
    ordinary_at = [float(expected[0, flat]) for _, flat in canaries.coordinates]
    for c in (0, 2):
        expected[0, canaries.coordinates[c][1]] += 2.0
    divisor = run.plan.sample_rate * len(rows)
    torch.testing.assert_close(step["weight"] * divisor, expected)
    assert canaries.steps == 1
    assert any(abs(v) > 0.1 for v in ordinary_at)  # the ordinary share is there to remove
    np.testing.assert_allclose(canaries.scores, [2.0, 0.0, 2.0, 0.0], atol=1e-5)


def test_scores_are_the_noise_plus_the_diracs() -> None:
    # Ordinary records with zero features: their clipped sum is zero, so the released sum at a
    # canary's coordinate is its Dirac (if included and sampled) plus the noise, and the score
    # is exactly that.
    rows = Rows(np.zeros((20, DIM)), [f"r{i}" for i in range(20)])
    canaries = GradientCanaries(ids=["c0", "c1", "c2"], seed=1)
    run, (step,) = _gradients(rows, canaries, budget=PrivacyBudget.private(1.0, 1e-5), clip=1.0)
    divisor = run.plan.sample_rate * len(rows)
    released = [float(step["weight"][0, flat]) * divisor for _, flat in canaries.coordinates]
    np.testing.assert_allclose(canaries.scores, released, rtol=1e-5)
    assert np.all(canaries.scores != 0)  # noise: no canary is in this split


def test_more_canaries_than_coordinates_is_refused() -> None:
    canaries = GradientCanaries(ids=[f"c{i}" for i in range(DIM + 1)], seed=0)
    with pytest.raises(PrivacyError, match="7 gradient canaries need as many trainable"):
        canaries.bind({"w": nn.Parameter(torch.zeros(DIM))})


def test_a_second_run_over_other_parameters_is_refused() -> None:
    canaries = GradientCanaries(ids=["c0"], seed=0)
    canaries.bind({"w": nn.Parameter(torch.zeros(DIM))})
    canaries.bind({"w": nn.Parameter(torch.zeros(DIM))})  # the same set: scores accumulate
    with pytest.raises(PrivacyError, match="one set of trainable parameters"):
        canaries.bind({"v": nn.Parameter(torch.zeros(DIM))})


def test_the_guard_keeps_its_canaries_read_only() -> None:
    guard = PrivateData(Rows(np.zeros((2, DIM)), ["a", "b"]), seed=0)
    assert guard.gradient_canaries is None
    with pytest.raises(AttributeError, match="read-only"):
        guard._canaries = GradientCanaries(ids=["c0"], seed=0)  # type: ignore[misc]
