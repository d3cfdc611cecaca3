"""Per-sample gradients (functorch and opacus) against a loop over single examples; clipping.

The tiny model here (``TinyCausalLM``) is shared with the engine tests: token + position
embeddings, LayerNorm, hand-written causal matmul/softmax attention with position ids expanded
to (B, T), an MLP, and a frozen EMA codebook that would update in train mode.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from isoeps.privacy.per_sample import (
    BACKENDS,
    clip_and_sum,
    create_backend,
    per_sample_norms,
)

VOCAB, DIM, HEADS, SEQ = 11, 8, 2, 6


class EmaCodebook(nn.Module):
    """A VQ-EMA-like module: its buffer moves on every forward pass in train mode."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("ema", torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.ema.lerp_(x.detach().mean(dim=(0, 1)), 0.5)
        return x + self.ema


class TinyCausalLM(nn.Module):
    def __init__(
        self, *, vocab: int = VOCAB, dim: int = DIM, heads: int = HEADS, max_len: int = SEQ
    ) -> None:
        super().__init__()
        self.heads = heads
        self.tok = nn.Embedding(vocab, dim)
        self.pos = nn.Embedding(max_len, dim)
        self.codebook = EmaCodebook(dim)
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.head = nn.Linear(dim, vocab)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        b, t = tokens.shape
        positions = torch.arange(t, device=tokens.device).unsqueeze(0).expand(b, t)
        x = self.codebook(self.tok(tokens) + self.pos(positions))
        q, k, v = self.qkv(self.norm1(x)).chunk(3, dim=-1)
        split = lambda z: z.reshape(b, t, self.heads, -1).transpose(1, 2)
        q, k, v = split(q), split(k), split(v)
        scores = q @ k.transpose(-1, -2) / (q.shape[-1] ** 0.5)
        causal = torch.ones(t, t, dtype=torch.bool, device=tokens.device).tril()
        attn = scores.masked_fill(~causal, float("-inf")).softmax(dim=-1)
        x = x + self.proj((attn @ v).transpose(1, 2).reshape(b, t, -1))
        x = x + self.mlp(self.norm2(x))
        return self.head(x)


def next_token_loss(module: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    tokens = batch["tokens"]
    logits = module(tokens)[:, :-1]
    losses = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1), reduction="none"
    )
    return losses.view(tokens.shape[0], -1).mean(dim=1)


def make_model(seed: int = 0, dtype: torch.dtype = torch.float64) -> TinyCausalLM:
    torch.manual_seed(seed)
    model = TinyCausalLM().to(dtype)
    model.eval()
    return model


def make_tokens(n: int, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).integers(0, VOCAB, size=(n, SEQ)))


def loop_grads(model: nn.Module, batch: dict[str, torch.Tensor], names: list[str]):
    params = dict(model.named_parameters())
    rows = []
    for i in range(batch["tokens"].shape[0]):
        single = {key: value[i : i + 1] for key, value in batch.items()}
        loss = next_token_loss(model, single).sum()
        rows.append(torch.autograd.grad(loss, [params[n] for n in names]))
    return {n: torch.stack([row[j] for row in rows]) for j, n in enumerate(names)}


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_per_sample_grads_match_loop_when_batch_equals_length(backend: str) -> None:
    # B == T is the case where an unbatched arange(T) position id silently goes wrong.
    model = make_model()
    batch = {"tokens": make_tokens(SEQ)}
    params = dict(model.named_parameters())
    expected = loop_grads(model, batch, list(params))
    with create_backend(backend, module=model, loss_fn=next_token_loss, params=params) as grads:
        got = grads.compute(batch)
    assert set(got) == set(params)
    for name, param in params.items():
        assert got[name].shape == (SEQ, *param.shape)
        torch.testing.assert_close(got[name], expected[name], rtol=1e-7, atol=1e-9, msg=name)


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_per_sample_grads_for_a_parameter_subset(backend: str) -> None:
    model = make_model(seed=1)
    batch = {"tokens": make_tokens(5, seed=1)}
    names = ["qkv.weight", "head.bias", "tok.weight"]
    for name, p in model.named_parameters():
        p.requires_grad_(name in names)
    params = {n: p for n, p in model.named_parameters() if n in names}
    expected = loop_grads(model, batch, names)
    with create_backend(backend, module=model, loss_fn=next_token_loss, params=params) as grads:
        got = grads.compute(batch)
    assert set(got) == set(names)
    for name in names:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-7, atol=1e-9, msg=name)


def test_backends_agree_and_leave_no_state_behind() -> None:
    model = make_model(seed=2)
    snapshot = copy.deepcopy(model.state_dict())
    batch = {"tokens": make_tokens(7, seed=2)}
    params = dict(model.named_parameters())
    results = {}
    for name in sorted(BACKENDS):
        with create_backend(name, module=model, loss_fn=next_token_loss, params=params) as grads:
            results[name] = clip_and_sum(grads.compute(batch), clip_norm=0.1)
    for key in params:
        torch.testing.assert_close(results["functorch"][key], results["opacus"][key])
    assert all(p.grad is None and getattr(p, "grad_sample", None) is None for p in params.values())
    assert not model.training and not model.codebook.training
    for key, value in model.state_dict().items():
        assert torch.equal(value, snapshot[key]), key
    # hooks are gone: a plain forward/backward no longer fills grad_sample
    next_token_loss(model, batch).sum().backward()
    assert all(getattr(p, "grad_sample", None) is None for p in params.values())


def test_clipping_bound_holds_per_sample() -> None:
    model = make_model(seed=3)
    batch = {"tokens": make_tokens(9, seed=3)}
    params = dict(model.named_parameters())
    with create_backend("functorch", module=model, loss_fn=next_token_loss, params=params) as grads:
        per_sample = grads.compute(batch)
    norms = per_sample_norms(per_sample)
    clip = float(norms.median())  # some examples are clipped, some are not
    assert (norms > clip).any() and (norms < clip).any()
    for i in range(9):
        one = clip_and_sum({n: g[i : i + 1] for n, g in per_sample.items()}, clip_norm=clip)
        norm = per_sample_norms({n: g.unsqueeze(0) for n, g in one.items()})[0]
        assert norm <= clip
        if norms[i] < clip:  # unclipped examples pass through unchanged
            for name in params:
                torch.testing.assert_close(one[name], per_sample[name][i])
    total = clip_and_sum(per_sample, clip_norm=clip)
    manual = {
        n: sum(per_sample[n][i] * min(1.0, clip / (float(norms[i]) + 1e-6)) for i in range(9))
        for n in params
    }
    for name in params:
        torch.testing.assert_close(total[name], manual[name])


def test_backend_errors_are_clear() -> None:
    model = make_model()
    params = dict(model.named_parameters())
    with pytest.raises(ValueError, match="backend must be one of"):
        create_backend("ghost", module=model, loss_fn=next_token_loss, params=params)
    reduced = lambda m, b: next_token_loss(m, b).mean()
    for name in sorted(BACKENDS):
        with (
            create_backend(name, module=model, loss_fn=reduced, params=params) as grads,
            pytest.raises(ValueError, match="per-example losses"),
        ):
            grads.compute({"tokens": make_tokens(3)})
    with pytest.raises(ValueError, match="batch dimension"):
        create_backend("functorch", module=model, loss_fn=next_token_loss, params=params).compute(
            {"tokens": torch.tensor(3)}
        )
