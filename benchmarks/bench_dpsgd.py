"""DP-SGD step time / non-private step time for the scale-causal AR transformer at batch 64.

One DP step = per-sample gradients of all trainable parameters (a backend of
:mod:`isoeps.privacy.per_sample`), per-sample clipping and sum, Gaussian noise from the guard's
randomness (:func:`isoeps.privacy.engine.gaussian_noise`), division by the expected batch, Adam.
One non-private step = mean loss, ``backward()``, Adam. Both on the same fixed batch of 64.

Variants:

- ``functorch``: ``functional_call`` + ``vmap`` + ``grad`` on the model as shipped
  (:mod:`isoeps.models.ar_transformer`, matmul + softmax attention);
- ``opacus``: opacus ``GradSampleModule`` hooks on the same model (its position, start and
  text-position tables are ``nn.Embedding`` layers looked up with ids expanded to ``(B, T)``,
  which opacus needs);
- ``bk``: book-keeping ("ghost") clipping (:mod:`isoeps.privacy.ghost_clipping`): per-example
  norms from activations and output gradients, the clipped sum as one GEMM per layer, with no
  per-sample gradient materialised (the DP step calls the backend's ``clipped_sum``, as the
  engine does);
- ``functorch-sdpa``: the shipped model with its attention replaced by
  ``torch.nn.functional.scaled_dot_product_attention`` (for comparison; DESIGN.md Notes).

Each ratio is DP / non-private on the same model variant, best of ``--repeats`` interleaved
rounds (each round: the mean of ``--steps`` steps after a warm-up step).

Usage: ``.venv/bin/python benchmarks/bench_dpsgd.py [--scales 1] [--repeats 5] [--steps 3]``
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from datetime import date

import torch
from torch.nn import functional as F

from isoeps.models.ar_transformer import (
    ARConfig,
    Attention,
    ScaleCausalTransformer,
    per_example_loss,
)
from isoeps.privacy.engine import gaussian_noise
from isoeps.privacy.per_sample import create_backend
from isoeps.privacy.rng import MechanismRandom

BATCH = 64


def sdpa_forward(self: Attention, x: torch.Tensor, bias: torch.Tensor, past=None):
    b, t, d = x.shape
    q, k, v = self.qkv(x).reshape(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    return self.out(y.transpose(1, 2).reshape(b, t, d)), (k, v)


def make_batch(config: ARConfig, scales: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randint(
        0, min(config.vocab_sizes), (BATCH, scales * config.tokens_per_scale), generator=generator
    )
    return {
        "tokens": tokens.contiguous(),
        "text": torch.randn(BATCH, 1, config.text_dim, generator=generator),
        "text_mask": torch.ones(BATCH, 1, dtype=torch.bool),
    }


def steppers(
    model: ScaleCausalTransformer, backend: str, batch: dict[str, torch.Tensor], scales: int
):
    """(non-private step, DP step) closures on ``model``, training what the method trains."""
    names = set(model.scale_parameter_names(range(scales)))
    for name, p in model.named_parameters():
        p.requires_grad_(name in names)
    params = {n: p for n, p in model.named_parameters() if n in names}
    optimizer = torch.optim.Adam(params.values(), lr=1e-4)
    random = MechanismRandom(seed=0)
    per_sample = create_backend(backend, module=model, loss_fn=per_example_loss, params=params)

    def plain() -> None:
        per_example_loss(model, batch).mean().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def private() -> None:
        summed = per_sample.clipped_sum(batch, clip_norm=1.0)
        noise = gaussian_noise(random, list(summed.values()), std=1.0)
        for (name, p), draw in zip(params.items(), noise):
            p.grad = summed[name].add_(draw).div_(BATCH)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return plain, private


def mean_time(step: Callable[[], None], steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=int, default=1, help="scales trained (1 = LL only)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    parser.add_argument("--variants", default="functorch,opacus,bk,functorch-sdpa")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    # The 32x32 default: L = 2 Haar levels, 2x2 patches on the 8x8 LL band -> 16 tokens/scale.
    config = ARConfig(vocab_sizes=(512, 512, 512), tokens_per_scale=16, dim=128, depth=4, heads=4)
    batch = make_batch(config, args.scales)
    variants = {}
    for name in args.variants.split(","):
        torch.manual_seed(0)
        model = ScaleCausalTransformer(config).eval()
        if name.endswith("sdpa"):
            for module in model.modules():
                if isinstance(module, Attention):
                    module.forward = sdpa_forward.__get__(module)
        plain, private = steppers(model, name.removesuffix("-sdpa"), batch, args.scales)
        plain(), private()  # warm-up
        variants[name] = {"plain": plain, "private": private}
    best: dict[str, dict[str, float]] = {n: {"plain": 1e9, "private": 1e9} for n in variants}
    for _ in range(args.repeats):
        for name, pair in variants.items():
            for kind, step in pair.items():
                best[name][kind] = min(best[name][kind], mean_time(step, args.steps))
    rows = {
        name: {
            "non_private_ms": round(1e3 * times["plain"], 1),
            "dp_ms": round(1e3 * times["private"], 1),
            "ratio": round(times["private"] / times["plain"], 2),
        }
        for name, times in best.items()
    }
    print(
        json.dumps(
            {
                "date": date.today().isoformat(),
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "machine": platform.processor() or platform.machine(),
                "batch": BATCH,
                "sequence": config.prefix_len + args.scales * config.tokens_per_scale,
                "params": sum(p.numel() for p in ScaleCausalTransformer(config).parameters()),
                "results": rows,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
