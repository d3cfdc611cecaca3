"""The DP-SGD engine: ledger, exact replay of a private step, noise scale, frozen parts, modes."""

from __future__ import annotations

import copy
import logging
import math

import numpy as np
import pytest
import torch
from test_per_sample_backends import SEQ, VOCAB, make_model, next_token_loss
from torch import nn

from isoeps.accountants import (
    CalibrationError,
    NonPrivate,
    PrivacyBudget,
    SubsampledGaussian,
)
from isoeps.errors import ConfigError, PrivacyError
from isoeps.privacy import PrivateData
from isoeps.privacy.engine import (
    DPSGDConfig,
    PrivateGradients,
    plan_dp_sgd,
    train_dp_sgd,
)
from isoeps.privacy.per_sample import CLIP_EPS
from isoeps.privacy.rng import MechanismRandom

PRV = ["prv"]  # the other accountants are exercised by the accountants' own tests
BUDGET = PrivacyBudget.private(8.0, 1e-3)
_MEMO: dict[tuple[str, str, str], float] = {}


def _memoized(function):
    def call(*args, **kwargs):
        key = (function.__name__, repr(args), repr(sorted(kwargs.items())))
        if key not in _MEMO:
            _MEMO[key] = function(*args, **kwargs)
        return _MEMO[key]

    return call


@pytest.fixture(autouse=True)
def _fast_accounting(monkeypatch: pytest.MonkeyPatch) -> None:
    # The real calibration and accountant, each computed once per distinct input (seconds each).
    from isoeps.privacy import engine

    monkeypatch.setattr(engine, "calibrate", _memoized(engine.calibrate))
    monkeypatch.setattr(engine, "epsilon", _memoized(engine.epsilon))


class TokenRecords:
    """``n`` records, each with ``captions`` token sequences (one is drawn per step)."""

    def __init__(self, tokens: np.ndarray) -> None:
        self.tokens = tokens

    @classmethod
    def make(cls, n: int, captions: int = 3, seed: int = 0) -> TokenRecords:
        rng = np.random.default_rng(seed)
        return cls(rng.integers(0, VOCAB, size=(n, captions, SEQ)))

    def __len__(self) -> int:
        return len(self.tokens)

    def take(self, indices: np.ndarray) -> TokenRecords:
        return TokenRecords(self.tokens[np.asarray(indices, dtype=np.int64)])


def collate(records: TokenRecords, rngs: list[np.random.Generator]) -> dict[str, torch.Tensor]:
    pick = np.array([rng.integers(0, records.tokens.shape[1]) for rng in rngs], dtype=np.int64)
    return {"tokens": torch.from_numpy(records.tokens[np.arange(len(records)), pick])}


def run(model, *, seed=0, budget=BUDGET, secure=False, records=None, loop=None, **overrides):
    config = DPSGDConfig(
        **{
            "expected_batch_size": 8,
            "steps": 3,
            "learning_rate": 0.05,
            "optimizer": "sgd",
            **overrides,
        }
    )
    guard = PrivateData(
        records or TokenRecords.make(40),
        mode=budget.mode,
        seed=None if secure else seed,
        secure=secure,
    )
    report = train_dp_sgd(
        guard=guard,
        module=model,
        loss_fn=next_token_loss,
        collate=collate,
        config=config,
        budget=budget,
        trainable=["qkv", "mlp.0", "head.weight"],
        show_progress=False,
        accountants=PRV,
        **(loop or {}),
    )
    return guard, report


def test_private_run_ledger_frozen_params_and_buffers() -> None:
    model = make_model(dtype=torch.float32)
    model.tok.weight.requires_grad_(False)  # a caller's flag that must come back
    before = copy.deepcopy(model.state_dict())
    guard, report = run(model)
    plan = report.plan
    assert guard.ledger.entries == (SubsampledGaussian(plan.noise_multiplier, 8 / 40, 3),)
    assert plan.sample_rate == pytest.approx(0.2) and plan.steps == 3
    assert 0 < plan.epsilon["prv"] <= BUDGET.epsilon
    assert report.steps_done == 3 and report.backend == "functorch"
    assert report.sampler == "poisson" and report.secure is False
    trained = {"qkv.weight", "qkv.bias", "mlp.0.weight", "mlp.0.bias", "head.weight"}
    after = model.state_dict()
    for name, value in before.items():
        changed = not torch.equal(after[name], value)
        assert changed == (name in trained), name  # incl. the EMA buffer: unchanged
    assert not model.training and not model.codebook.training
    assert not model.tok.weight.requires_grad and model.pos.weight.requires_grad


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_backends_and_virtual_batches_give_the_same_update(optimizer: str) -> None:
    results = []
    for backend, physical in (("functorch", 64), ("opacus", 64), ("functorch", 3)):
        model = make_model(seed=5, dtype=torch.float64)
        run(model, seed=11, backend=backend, max_physical_batch_size=physical, optimizer=optimizer)
        results.append(model.state_dict())
    for other in results[1:]:
        for name, value in results[0].items():
            torch.testing.assert_close(other[name], value, msg=name)
    assert not torch.equal(results[0]["qkv.weight"], make_model(seed=5).qkv.weight.data)


class Linear(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.w = nn.Linear(dim, 1, bias=False, dtype=torch.float64)
        nn.init.zeros_(self.w.weight)


class VectorRecords:
    def __init__(self, x: np.ndarray) -> None:
        self.x = x

    def __len__(self) -> int:
        return len(self.x)

    def take(self, indices: np.ndarray) -> VectorRecords:
        return VectorRecords(self.x[indices])


def linear_loss(module: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return module.w(batch["x"]).squeeze(-1)  # per-example gradient = x_i


def test_private_step_replays_exactly() -> None:
    # Two steps of plain SGD on a linear loss: each update must equal
    # -lr * (sum_i clip(x_i) + sigma C z) / (q N), with the batch and z replayed from the seed.
    n, dim, clip, lr, seed = 30, 5, 1.5, 0.1, 7
    x = np.random.default_rng(0).normal(size=(n, dim)) * np.linspace(0.1, 2.0, n)[:, None]
    module = Linear(dim)
    config = DPSGDConfig(
        clip_norm=clip,
        expected_batch_size=6,
        steps=2,
        learning_rate=lr,
        optimizer="sgd",
        max_physical_batch_size=4,
    )
    guard = PrivateData(VectorRecords(x), seed=seed)
    report = train_dp_sgd(
        guard=guard,
        module=module,
        loss_fn=linear_loss,
        collate=lambda r, rng: {"x": torch.from_numpy(r.x)},
        config=config,
        budget=BUDGET,
        show_progress=False,
        accountants=PRV,
    )
    sigma = report.plan.noise_multiplier
    replay = MechanismRandom(seed=seed)
    expected = np.zeros(dim)
    for _ in range(2):
        batch = x[replay.poisson_mask(n, 6 / n)]
        norms = np.linalg.norm(batch, axis=1, keepdims=True)
        total = (batch * np.minimum(1.0, clip / (norms + CLIP_EPS))).sum(axis=0)
        generator = torch.Generator().manual_seed(int(replay.integers(2**62, 1)[0]))
        noise = torch.randn(dim, generator=generator, dtype=torch.float64).numpy()
        expected -= lr * (total + sigma * clip * noise) / 6
    np.testing.assert_allclose(module.w.weight.detach().numpy()[0], expected, rtol=1e-10)


def test_noise_std_is_sigma_clip_over_expected_batch() -> None:
    # A loss with zero gradient: one SGD step with lr=1 moves each weight by pure noise.
    dim = 120
    module = nn.Linear(dim, dim, bias=False)
    start = module.weight.detach().clone()
    config = DPSGDConfig(
        clip_norm=2.0, expected_batch_size=8, steps=1, learning_rate=1.0, optimizer="sgd"
    )
    guard = PrivateData(VectorRecords(np.ones((32, dim), dtype=np.float32)), seed=3)
    report = train_dp_sgd(
        guard=guard,
        module=module,
        loss_fn=lambda m, b: (m(b["x"]) * 0).sum(-1),
        collate=lambda r, rng: {"x": torch.from_numpy(r.x)},
        config=config,
        budget=BUDGET,
        show_progress=False,
        accountants=PRV,
    )
    step = (module.weight.detach() - start).flatten().double()
    expected = report.plan.noise_multiplier * 2.0 / 8
    assert abs(float(step.mean())) < 4 * expected / math.sqrt(step.numel())
    assert float(step.std()) == pytest.approx(expected, rel=0.04)  # 14,400 draws: ~0.6% s.e.


def test_inf_mode_reads_raw_data_without_noise() -> None:
    model = make_model(dtype=torch.float64)
    guard, report = run(model, budget=PrivacyBudget.non_private())
    assert len(guard.ledger) == 1 and isinstance(guard.ledger.entries[0], NonPrivate)
    assert report.plan.noise_multiplier is None and report.plan.noise_std == 0
    assert report.plan.epsilon == {"prv": math.inf}
    assert report.steps_done == 3
    # same schedule, no clipping, no noise: equal to the opacus-free autograd on the same batches
    twin = make_model(dtype=torch.float64)
    run(twin, budget=PrivacyBudget.non_private())
    for name, value in model.state_dict().items():
        assert torch.equal(twin.state_dict()[name], value), name


def test_empty_poisson_batches_step_with_noise_only() -> None:
    sizes: list[int] = []

    def counting(records, rng):
        sizes.append(len(records))
        return collate(records, rng)

    records = TokenRecords.make(400)
    replay = MechanismRandom(seed=4)
    realised = []
    for _ in range(6):
        realised.append(int(replay.poisson_mask(400, 1 / 400).sum()))
        replay.integers(2**62, 1)
    assert 0 in realised  # this seed has empty batches
    model = make_model(dtype=torch.float32)
    before = model.head.weight.detach().clone()
    report = train_dp_sgd(
        guard=PrivateData(records, seed=4),
        module=model,
        loss_fn=next_token_loss,
        collate=counting,
        config=DPSGDConfig(expected_batch_size=1, steps=6),
        budget=PrivacyBudget.private(50.0, 1e-3),
        show_progress=False,
        accountants=PRV,
    )
    assert report.steps_done == 6
    assert sizes == [s for s in realised if s]
    assert not torch.equal(model.head.weight, before)


def test_secure_mode_runs_and_is_not_reproducible() -> None:
    first, second = make_model(dtype=torch.float32), make_model(dtype=torch.float32)
    guard, report = run(first, secure=True)
    run(second, secure=True)
    assert guard.secure and report.secure
    assert guard.ledger.entries[0].noise_multiplier == report.plan.noise_multiplier
    assert not torch.equal(first.qkv.weight, second.qkv.weight)


def test_logs_show_step_sigma_epsilon_not_losses(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="isoeps"):
        run(make_model(dtype=torch.float32), steps=20)
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("isoeps")]
    steps = [m for m in messages if "step" in m and "/20" in m]
    assert len(steps) == 10 and steps[-1].startswith("dp-sgd step 20/20 sigma=")
    assert all("epsilon" in m for m in steps)
    assert not any("loss" in m.lower() for m in messages)


def test_unreachable_epsilon_suggests_fewer_steps_or_larger_batch(monkeypatch) -> None:
    def refuse(**kwargs):
        raise CalibrationError("needs noise_multiplier > 1000")

    monkeypatch.setattr("isoeps.privacy.engine.calibrate", refuse)
    config = DPSGDConfig(expected_batch_size=256, steps=300)
    with pytest.raises(
        ConfigError,
        match=r"epsilon=0.01 is too small to train 300 steps at "
        r"expected batch 256 of 20000 .*try fewer steps or a larger expected",
    ):
        plan_dp_sgd(config=config, budget=PrivacyBudget.private(0.01, 1e-5), num_records=20000)


@pytest.mark.slow
def test_unreachable_epsilon_with_the_real_calibration() -> None:
    config = DPSGDConfig(expected_batch_size=100, steps=100)
    with pytest.raises(ValueError, match="try fewer steps or a larger expected batch"):
        plan_dp_sgd(config=config, budget=PrivacyBudget.private(1e-4, 1e-8), num_records=100)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("clip_norm", 0.0, "dp_sgd.clip_norm: Input should be greater than 0"),
        ("learning_rate", float("nan"), "dp_sgd.learning_rate"),
        (
            "expected_batch_size",
            0,
            "dp_sgd.expected_batch_size: Input should be greater than or equal to 1",
        ),
        ("steps", 2.5, "dp_sgd.steps: Input should be a valid integer"),
        ("max_physical_batch_size", True, "dp_sgd.max_physical_batch_size"),
        ("optimizer", "rmsprop", "dp_sgd.optimizer: Input should be 'adam' or 'sgd'"),
        ("backend", "ghost", "dp_sgd.backend: Input should be 'bk', 'functorch' or 'opacus'"),
    ],
)
def test_config_validation(field: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        DPSGDConfig(**{field: value})


def test_plan_and_train_reject_bad_calls() -> None:
    with pytest.raises(ConfigError, match="exceeds the 10 private records"):
        plan_dp_sgd(config=DPSGDConfig(expected_batch_size=11), budget=BUDGET, num_records=10)
    with pytest.raises(ConfigError, match="public"):
        plan_dp_sgd(config=DPSGDConfig(), budget=PrivacyBudget.public_only(), num_records=10)
    with pytest.raises(ConfigError, match="'attn' matches no parameter"):
        train_dp_sgd(
            guard=PrivateData(TokenRecords.make(20), seed=0),
            module=make_model(),
            loss_fn=next_token_loss,
            collate=collate,
            config=DPSGDConfig(expected_batch_size=4, steps=1),
            budget=BUDGET,
            trainable=["attn"],
            show_progress=False,
            accountants=PRV,
        )
    guard = PrivateData(TokenRecords.make(20), seed=0)
    guard.raw()
    with pytest.raises(ConfigError, match="raw"):
        train_dp_sgd(
            guard=guard,
            module=make_model(),
            loss_fn=next_token_loss,
            collate=collate,
            config=DPSGDConfig(expected_batch_size=4, steps=1),
            budget=BUDGET,
            show_progress=False,
            accountants=PRV,
        )


def _gradients(model, *, budget=BUDGET, mode=None) -> PrivateGradients:
    return PrivateGradients(
        guard=PrivateData(TokenRecords.make(40), mode=mode or budget.mode, seed=0),
        module=model,
        loss_fn=next_token_loss,
        collate=collate,
        config=DPSGDConfig(expected_batch_size=8, steps=3),
        budget=budget,
        trainable=["qkv", "mlp.0", "head.weight"],
        accountants=PRV,
    )


@pytest.mark.parametrize("budget", [BUDGET, PrivacyBudget.non_private()], ids=["eps8", "inf"])
def test_the_gradient_iterator_is_the_default_loop_without_the_optimizer(budget) -> None:
    """Applying the yielded gradients with SGD by hand gives train_dp_sgd's model (to float64
    rounding: torch's SGD fuses the update differently)."""
    by_hand = make_model(dtype=torch.float64)
    default = copy.deepcopy(by_hand)
    gradients = _gradients(by_hand, budget=budget)
    assert len(gradients) == 3 and set(gradients.params) >= {"head.weight", "qkv.weight"}
    for step in gradients:
        with torch.no_grad():  # only the update: the iterator's backward needs autograd
            for name, param in gradients.params.items():
                param.sub_(0.05 * step[name])
    run(default, budget=budget)
    for name, value in default.state_dict().items():
        torch.testing.assert_close(by_hand.state_dict()[name], value, rtol=1e-12, atol=1e-14)


def test_warmup_and_ema_are_post_processing_of_the_iterators_gradients() -> None:
    """The default loop's warm-up scales each step's learning rate, and its average replaces
    the last iterate: by hand over the same privatised gradients, the same model."""
    by_hand = make_model(dtype=torch.float64)
    default = copy.deepcopy(by_hand)
    gradients = _gradients(by_hand)
    average = {name: p.detach().clone() for name, p in gradients.params.items()}
    for step, gradient in enumerate(gradients):
        rate = 0.05 * min(1.0, (step + 1) / 2)
        with torch.no_grad():
            for name, param in gradients.params.items():
                param.sub_(rate * gradient[name])
                average[name].mul_(0.75).add_(param, alpha=0.25)
    run(default, loop={"warmup_steps": 2, "ema_decay": 0.75})
    trained = dict(default.named_parameters())
    for name, value in average.items():
        torch.testing.assert_close(trained[name], value, rtol=1e-12, atol=1e-14)
    last = dict(by_hand.named_parameters())
    assert any(not torch.allclose(trained[n], last[n]) for n in average)  # not the last iterate
    with pytest.raises(ValueError, match="ema_decay in"):
        run(make_model(), loop={"ema_decay": 1.0})


def test_the_gradient_iterator_is_single_use_and_matches_its_guard() -> None:
    gradients = _gradients(make_model(dtype=torch.float32))
    for _ in gradients:
        pass
    with pytest.raises(PrivacyError, match="single-use"):
        iter(gradients)
    with pytest.raises(ConfigError, match="the guard runs 'inf'"):
        _gradients(make_model(dtype=torch.float32), mode="inf")
