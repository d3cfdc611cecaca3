"""Book-keeping ("bk") clipping against functorch per-sample gradients, on the tiny test model,
on the real AR transformer and on layer corner cases; its refusals; the engine with it."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from test_engine_dpsgd import BUDGET, TokenRecords, collate
from test_engine_dpsgd import run as run_engine
from test_per_sample_backends import make_model, make_tokens, next_token_loss
from torch import nn

from isoeps.models.ar_transformer import ARConfig, ScaleCausalTransformer, per_example_loss
from isoeps.privacy import PrivateData
from isoeps.privacy.engine import DPSGDConfig, train_dp_sgd
from isoeps.privacy.per_sample import (
    BookKeepingGradients,
    clip_and_sum,
    create_backend,
    per_sample_norms,
)


def reference(module, loss_fn, params, batch, clip):
    with create_backend("functorch", module=module, loss_fn=loss_fn, params=params) as grads:
        per_sample = grads.compute(batch)
    return per_sample, clip_and_sum(per_sample, clip_norm=clip)


def assert_same_sums(got, expected, *, rtol):
    assert set(got) == set(expected)
    for name, value in expected.items():
        assert got[name].shape == value.shape, name
        error = float((got[name] - value).norm() / value.norm().clamp(min=1e-30))
        assert error <= rtol, (name, error)


def median_norm(per_sample) -> float:
    norms = per_sample_norms(per_sample)
    clip = float(norms.median())
    assert (norms > clip).any() and (norms < clip).any()  # some clipped, some not
    return clip


@pytest.mark.parametrize(
    ("dtype", "rtol"), [(torch.float64, 1e-10), (torch.float32, 1e-5)], ids=["f64", "f32"]
)
def test_clipped_sum_matches_functorch_on_the_tiny_model(dtype, rtol) -> None:
    model = make_model(seed=4, dtype=dtype)
    batch = {"tokens": make_tokens(9, seed=4)}
    params = dict(model.named_parameters())
    per_sample, _ = reference(model, next_token_loss, params, batch, 1.0)
    clip = median_norm(per_sample)
    for c in (clip, 1e6):
        expected = clip_and_sum(per_sample, clip_norm=c)
        with BookKeepingGradients(module=model, loss_fn=next_token_loss, params=params) as bk:
            assert_same_sums(bk.clipped_sum(batch, clip_norm=c), expected, rtol=rtol)


def test_parameter_subset_and_no_state_left_behind() -> None:
    model = make_model(seed=6)
    snapshot = copy.deepcopy(model.state_dict())
    names = ["qkv.bias", "mlp.0.weight", "norm2.weight", "pos.weight"]  # weights without biases
    for name, p in model.named_parameters():
        p.requires_grad_(name in names)
    params = {n: p for n, p in model.named_parameters() if n in names}
    batch = {"tokens": make_tokens(5, seed=6)}
    per_sample, _ = reference(model, next_token_loss, params, batch, 1.0)
    clip = median_norm(per_sample)
    with BookKeepingGradients(module=model, loss_fn=next_token_loss, params=params) as bk:
        got = bk.clipped_sum(batch, clip_norm=clip)
        hooks = [m._forward_hooks for m in model.modules()]
    assert_same_sums(got, clip_and_sum(per_sample, clip_norm=clip), rtol=1e-10)
    assert all(not h for h in hooks)
    assert all(p.grad is None for p in model.parameters())
    assert not model.training
    for key, value in model.state_dict().items():
        assert torch.equal(value, snapshot[key]), key


def ar_model(scales: int, dtype: torch.dtype):
    config = ARConfig(vocab_sizes=(13, 17, 19), tokens_per_scale=4, text_dim=6, dim=8, heads=2)
    torch.manual_seed(scales)
    model = ScaleCausalTransformer(config).to(dtype).eval()
    for p in model.parameters():  # away from the near-zero init, so that norms differ
        p.data.normal_(0.0, 0.3)
    names = set(model.scale_parameter_names(range(scales)))
    for name, p in model.named_parameters():
        p.requires_grad_(name in names)
    generator = torch.Generator().manual_seed(scales)
    batch = {
        "tokens": torch.randint(0, 13, (6, 4 * scales), generator=generator),
        "text": torch.randn(6, 1, 6, generator=generator).to(dtype),
        "text_mask": torch.tensor([1, 1, 0, 1, 1, 1], dtype=torch.bool)[:, None],
    }
    return model, {n: p for n, p in model.named_parameters() if n in names}, batch


@pytest.mark.parametrize("scales", [1, 3])
@pytest.mark.parametrize(
    ("dtype", "rtol"), [(torch.float64, 1e-10), (torch.float32, 1e-5)], ids=["f64", "f32"]
)
def test_clipped_sum_matches_functorch_on_the_ar_model(scales, dtype, rtol) -> None:
    model, params, batch = ar_model(scales, dtype)
    per_sample, _ = reference(model, per_example_loss, params, batch, 1.0)
    clip = median_norm(per_sample)
    with BookKeepingGradients(module=model, loss_fn=per_example_loss, params=params) as bk:
        assert_same_sums(
            bk.clipped_sum(batch, clip_norm=clip),
            clip_and_sum(per_sample, clip_norm=clip),
            rtol=rtol,
        )
        got = bk.compute(batch)
    for name, value in per_sample.items():
        torch.testing.assert_close(got[name], value, msg=name)


class Corners(nn.Module):
    """Layer uses the AR model does not exercise: reuse, padding, 2-D inputs, no bias,
    a multi-dimensional LayerNorm, a trainable layer the loss never reaches."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(5, 4, padding_idx=0)
        self.shared = nn.Linear(4, 4)  # called twice
        self.nobias = nn.Linear(4, 6, bias=False)
        self.flat = nn.Linear(3, 2)  # (B, d) input
        self.norm = nn.LayerNorm((2, 3))
        self.unused = nn.Linear(2, 2)

    def forward(self, ids: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        h = self.emb(ids) + self.emb(ids.flip(1))  # ids repeat within and across calls
        h = self.shared(torch.tanh(self.shared(h)))
        h = self.norm(self.nobias(h).reshape(*h.shape[:2], 2, 3))
        return h.sum(dim=(1, 2, 3)) + self.flat(x).square().sum(dim=1)


def corners_loss(module: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return module(batch["ids"], batch["x"]).square()


def test_layer_corner_cases_match_functorch() -> None:
    torch.manual_seed(0)
    model = Corners().double()
    for p in model.parameters():
        p.data.normal_()
    generator = torch.Generator().manual_seed(0)
    batch = {
        "ids": torch.randint(0, 5, (7, 6), generator=generator),
        "x": torch.randn(7, 3, generator=generator, dtype=torch.float64),
    }
    assert (batch["ids"] == 0).any()
    params = dict(model.named_parameters())
    per_sample, _ = reference(model, corners_loss, params, batch, 1.0)
    clip = median_norm(per_sample)
    with BookKeepingGradients(module=model, loss_fn=corners_loss, params=params) as bk:
        got = bk.compute(batch)
        sums = bk.clipped_sum(batch, clip_norm=clip)
    for name, value in per_sample.items():
        torch.testing.assert_close(got[name], value, rtol=1e-10, atol=1e-12, msg=name)
    assert torch.equal(got["unused.weight"], torch.zeros(7, 2, 2, dtype=torch.float64))
    assert torch.equal(got["emb.weight"][:, 0], torch.zeros(7, 4, dtype=torch.float64))
    expected = clip_and_sum(per_sample, clip_norm=clip)
    for name, value in expected.items():
        torch.testing.assert_close(sums[name], value, rtol=1e-10, atol=1e-12, msg=name)


def test_clipping_bound_holds_per_example() -> None:
    model = make_model(seed=8)
    params = dict(model.named_parameters())
    tokens = make_tokens(6, seed=8)
    per_sample, _ = reference(model, next_token_loss, params, {"tokens": tokens}, 1.0)
    clip = median_norm(per_sample)
    with BookKeepingGradients(module=model, loss_fn=next_token_loss, params=params) as bk:
        for i in range(6):
            one = bk.clipped_sum({"tokens": tokens[i : i + 1]}, clip_norm=clip)
            norm = per_sample_norms({n: g.unsqueeze(0) for n, g in one.items()})[0]
            assert norm <= clip


class WithConv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(2, 2, 1)
        self.lin = nn.Linear(2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(self.conv(x).mean(dim=2)).squeeze(1)


class Tied(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(4, 3)
        self.out = nn.Linear(3, 4, bias=False)
        self.out.weight = self.emb.weight


class Flattening(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x.reshape(-1, 2)).reshape(x.shape[0], -1).sum(dim=1)


class InPlace(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.lin(x)
        y.mul_(2.0)
        return y.sum(dim=1)


def x_loss(module: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return module(batch["x"])


def test_refusals_name_the_culprit() -> None:
    model = WithConv()
    params = dict(model.named_parameters())
    with pytest.raises(ValueError, match=r"Conv1d at 'conv'.*functorch"):
        create_backend("bk", module=model, loss_fn=x_loss, params=params)
    # a frozen unsupported layer is fine
    BookKeepingGradients.check(module=model, params=dict(model.lin.named_parameters(prefix="lin")))
    tied = Tied()
    with pytest.raises(ValueError, match="shared between modules"):
        BookKeepingGradients.check(module=tied, params=dict(tied.named_parameters()))
    freq = nn.Embedding(3, 2, scale_grad_by_freq=True)
    with pytest.raises(ValueError, match="scale_grad_by_freq"):
        BookKeepingGradients.check(module=freq, params=dict(freq.named_parameters()))
    for module, x, message in (
        (Flattening(), torch.randn(3, 4), r"'lin' got an input of shape \(6, 2\)"),
        (InPlace(), torch.randn(3, 2), "'lin' was modified in place"),
    ):
        params = dict(module.named_parameters())
        with (
            BookKeepingGradients(module=module, loss_fn=x_loss, params=params) as bk,
            pytest.raises(ValueError, match=message),
        ):
            bk.clipped_sum({"x": x}, clip_norm=1.0)


def test_engine_with_bk_gives_the_functorch_update() -> None:
    results = []
    for backend, physical in (("functorch", 64), ("bk", 64), ("bk", 3)):
        model = make_model(seed=5, dtype=torch.float64)
        guard, report = run_engine(
            model, seed=11, backend=backend, max_physical_batch_size=physical, optimizer="adam"
        )
        assert report.backend == backend
        results.append((model.state_dict(), guard.ledger.entries))
    for state, entries in results[1:]:
        assert entries == results[0][1]
        for name, value in results[0][0].items():
            torch.testing.assert_close(state[name], value, msg=name)
    assert not torch.equal(results[0][0]["qkv.weight"], make_model(seed=5).qkv.weight.data)


def test_engine_refuses_an_unsupported_model_before_the_ledger() -> None:
    model = WithConv().double()
    guard = PrivateData(TokenRecords.make(20), seed=0)
    with pytest.raises(ValueError, match="Conv1d"):
        train_dp_sgd(
            guard=guard,
            module=model,
            loss_fn=lambda m, b: m(F.one_hot(b["tokens"][:, :2], 2).double()),
            collate=collate,
            config=DPSGDConfig(expected_batch_size=4, steps=2, backend="bk"),
            budget=BUDGET,
            show_progress=False,
            accountants=["prv"],
        )
    assert guard.ledger.entries == ()
