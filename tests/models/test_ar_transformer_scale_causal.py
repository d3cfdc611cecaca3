"""The scale-causal AR transformer: masking, KV-cache sampling, per-example loss under vmap."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from isoeps.models.ar_transformer import ARConfig, ScaleCausalTransformer, per_example_loss

PER = 4  # tokens per scale
VOCAB = (7, 9, 11)


def _model(text_mode: str = "pooled") -> ScaleCausalTransformer:
    torch.manual_seed(0)
    config = ARConfig(
        vocab_sizes=VOCAB,
        tokens_per_scale=PER,
        text_dim=6,
        text_mode=text_mode,
        prefix_len=2,
        dim=16,
        depth=2,
        heads=2,
        mlp_ratio=2,
    )
    model = ScaleCausalTransformer(config).eval()
    # Random (not the near-zero init) weights, so that any leak would show in the logits.
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.5)
    return model


class _LossModule(nn.Module):
    def __init__(self, model: ScaleCausalTransformer) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return per_example_loss(self.model, batch)


def _batch(b: int, text_mode: str = "pooled", seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    tokens = torch.cat([torch.randint(v, (b, PER), generator=g) for v in VOCAB], dim=1)
    length = 1 if text_mode == "pooled" else 5
    mask = torch.ones(b, length, dtype=torch.bool)
    if text_mode == "tokens":
        mask[:, 3:] = False
    return {"tokens": tokens, "text": torch.randn(b, length, 6, generator=g), "text_mask": mask}


@pytest.mark.parametrize("text_mode", ["pooled", "tokens"])
def test_finer_tokens_never_change_coarser_logits(text_mode: str) -> None:
    model = _model(text_mode)
    batch = _batch(3, text_mode)
    base = model(batch["tokens"], batch["text"], batch["text_mask"])
    for position in range(PER, 3 * PER):  # every token of scales 1 and 2
        scale = position // PER
        changed = batch["tokens"].clone()
        changed[:, position] = (changed[:, position] + 1) % VOCAB[scale]
        out = model(changed, batch["text"], batch["text_mask"])
        for coarser in range(scale):
            torch.testing.assert_close(out[coarser], base[coarser], rtol=0, atol=0)
        # causal inside the scale: positions up to and including it are unchanged
        within = position % PER
        torch.testing.assert_close(
            out[scale][:, : within + 1], base[scale][:, : within + 1], rtol=0, atol=0
        )
    # ... while a coarse token does change the finer logits (the test can fail).
    changed = batch["tokens"].clone()
    changed[:, 0] = (changed[:, 0] + 1) % VOCAB[0]
    out = model(changed, batch["text"], batch["text_mask"])
    assert not torch.allclose(out[2], base[2])


def test_masked_text_is_ignored_and_unconditional_rows_are_finite() -> None:
    model = _model("tokens")
    batch = _batch(2, "tokens")
    base = model(batch["tokens"], batch["text"], batch["text_mask"])
    noisy = batch["text"].clone()
    noisy[:, 3:] = 100.0  # padded positions
    out = model(batch["tokens"], noisy, batch["text_mask"])
    for a, b in zip(out, base):
        torch.testing.assert_close(a, b)
    uncond = model(batch["tokens"], batch["text"], torch.zeros_like(batch["text_mask"]))
    assert all(torch.isfinite(x).all() for x in uncond)


@pytest.mark.parametrize("cfg_scale", [1.0, 2.0])
def test_kv_cache_generation_matches_teacher_forcing(cfg_scale: float) -> None:
    model = _model()
    batch = _batch(3)
    tokens = model.generate(
        text=batch["text"],
        text_mask=batch["text_mask"],
        num_scales=3,
        temperature=0,
        cfg_scale=cfg_scale,
    )
    cond = model(tokens, batch["text"], batch["text_mask"])
    if cfg_scale == 1.0:
        greedy = torch.cat([x.argmax(-1) for x in cond], dim=1)
    else:
        uncond = model(tokens, batch["text"], torch.zeros_like(batch["text_mask"]))
        greedy = torch.cat(
            [(u + cfg_scale * (c - u)).argmax(-1) for c, u in zip(cond, uncond)], dim=1
        )
    assert torch.equal(greedy, tokens)
    # continuation keeps the given coarse tokens
    more = model.generate(
        text=batch["text"],
        text_mask=batch["text_mask"],
        num_scales=3,
        prefix_tokens=batch["tokens"][:, :PER],
        generator=torch.Generator().manual_seed(0),
    )
    assert torch.equal(more[:, :PER], batch["tokens"][:, :PER])
    for s, v in enumerate(VOCAB):
        assert int(more[:, s * PER : (s + 1) * PER].max()) < v


@pytest.mark.parametrize("scales", [1, 3])
def test_per_example_gradients_under_vmap_match_a_loop(scales: int) -> None:
    model = _model()
    batch = _batch(4)
    batch["tokens"] = batch["tokens"][:, : scales * PER].contiguous()
    names = model.scale_parameter_names(range(scales))
    params = {f"model.{n}": p.detach() for n, p in model.named_parameters() if n in names}
    frozen = {f"model.{n}": p.detach() for n, p in model.named_parameters() if n not in names}

    wrapped = _LossModule(model)

    def loss_fn(trainable: dict, example: dict) -> torch.Tensor:
        single = {k: v.unsqueeze(0) for k, v in example.items()}
        return functional_call(wrapped, {**trainable, **frozen}, (single,))[0]

    per_sample = vmap(grad(loss_fn), in_dims=(None, 0))(params, batch)
    for i in range(4):
        model.zero_grad()
        single = {k: v[i : i + 1] for k, v in batch.items()}
        per_example_loss(model, single)[0].backward()
        for name in names:
            expected = dict(model.named_parameters())[name].grad
            torch.testing.assert_close(
                per_sample[f"model.{name}"][i], expected, atol=1e-5, rtol=1e-4
            )
    # the excluded parameters (finer scales) really are unused by the coarse loss
    model.zero_grad()
    per_example_loss(model, batch).sum().backward()
    for name, p in model.named_parameters():
        if name not in names:
            assert p.grad is None or torch.count_nonzero(p.grad) == 0, name


def test_per_example_loss_shape_and_no_forbidden_layers() -> None:
    model = _model()
    assert per_example_loss(model, _batch(5)).shape == (5,)
    assert per_example_loss(model, _batch(1)).shape == (1,)
    for module in model.modules():
        assert not isinstance(module, (nn.MultiheadAttention, nn.modules.batchnorm._BatchNorm))
