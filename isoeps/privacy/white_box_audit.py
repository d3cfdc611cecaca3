"""The white-box one-run audit of DP-SGD gradients, with Dirac gradient canaries.

Steinke, Nasr and Jagielski (arXiv:2305.08846), white-box setting, after Nasr et al.
(arXiv:2302.07956). The probe model is one vector theta of m + 1 coordinates. Canary i's
per-example gradient is C e_i (norm C, so clipping leaves it whole); every ordinary record's
is C e_m. Each canary enters the guard's dataset by its fair coin
(:func:`isoeps.privacy.audit_coins.canary_coins`), so it is Poisson-sampled like any record.
Canary i's score is coordinate i of the privatised update, summed over the steps: a member
adds about q T C / (q N) to it, and the noise is what hides that.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from isoeps.accountants import PrivacyBudget
from isoeps.accountants.one_run_audit import count_correct, epsilon_lower_bound
from isoeps.privacy.audit_coins import canary_coins
from isoeps.privacy.config import DPSGDConfig
from isoeps.privacy.engine import PrivateGradients
from isoeps.privacy.guard import PrivateData

#: Builds the gradient iterator under audit from the engine's keyword arguments.
GradientFactory = Callable[..., Iterable[dict[str, Tensor]]]


class _Probe(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.theta = nn.Parameter(torch.zeros(dim))


def _loss(module: nn.Module, batch: dict[str, Tensor]) -> Tensor:
    """Per-example loss scale * theta[coord]: its gradient is scale * e_coord (a Dirac)."""
    return module.theta[batch["coord"]] * batch["scale"]


class _Records:
    """The probe's records: a coordinate per record (``m`` for ordinary records)."""

    def __init__(self, coords: np.ndarray) -> None:
        self.coords = coords
        self.ids = [f"r{i}" for i in range(len(coords))]

    def __len__(self) -> int:
        return len(self.coords)

    def take(self, indices: np.ndarray) -> np.ndarray:
        return self.coords[np.asarray(indices, dtype=np.int64)]


@dataclass(frozen=True, kw_only=True)
class WhiteBoxOutcome:
    """The bound and what produced it."""

    epsilon_lower: float
    epsilon_achieved: float
    noise_multiplier: float | None
    correct: int
    m: int
    k: int
    beta: float


def white_box_audit(
    *,
    m: int,
    k: int,
    records: int,
    budget: PrivacyBudget,
    sample_rate: float,
    steps: int,
    cell_seed: int,
    beta: float = 0.05,
    gradients: GradientFactory = PrivateGradients,
) -> WhiteBoxOutcome:
    """Run the gradient iterator on the probe with Dirac canaries and bound its epsilon.

    Args:
        m: canaries, each included by a fair coin.
        k: guesses on each side (k <= m / 2).
        records: ordinary records besides the canaries.
        budget: the budget sigma is calibrated to (its delta is the bound's).
        sample_rate: q, approximately (the expected batch is rounded from q N).
        steps: T.
        cell_seed: seeds the coins and the mechanism.
        beta: one minus the confidence.
        gradients: the iterator under audit (default: the engine).

    Returns:
        epsilon_lower with the engine's planned epsilon and the right-guess count.
    """
    coins = canary_coins(m=m, cell_seed=cell_seed)
    coords = np.concatenate([np.full(records, m), np.flatnonzero(coins)]).astype(np.int64)
    data = _Records(coords)
    guard = PrivateData.for_cell(
        data, mode=budget.mode, cell_seed=cell_seed, secure=False, ledger=None
    )
    batch = max(1, round(sample_rate * len(data)))
    config = DPSGDConfig(
        clip_norm=1.0, expected_batch_size=batch, steps=steps, max_physical_batch_size=4096
    )
    run = gradients(
        guard=guard, module=_Probe(m + 1), loss_fn=_loss, collate=_collate,
        config=config, budget=budget,
    )  # fmt: skip
    scores = torch.zeros(m, dtype=torch.float64)
    for step in run:
        scores += step["theta"][:m].double()
    correct, _ = count_correct(scores=scores.numpy(), coins=coins, k=k)
    plan = run.plan  # type: ignore[attr-defined]
    bound = epsilon_lower_bound(
        m=m, k_plus=k, k_minus=k, correct=correct, beta=beta, delta=budget.delta or 0.0
    )
    return WhiteBoxOutcome(
        epsilon_lower=bound,
        epsilon_achieved=float(plan.epsilon.get("prv", float("nan"))),
        noise_multiplier=plan.noise_multiplier,
        correct=correct,
        m=m,
        k=k,
        beta=beta,
    )


def _collate(coords: Any, rngs: Any) -> dict[str, Tensor]:
    coord = torch.as_tensor(np.asarray(coords), dtype=torch.long)
    return {"coord": coord, "scale": torch.ones(len(coord))}
