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
- ``opacus-ghost``: opacus' own ghost clipping, the objects ``PrivacyEngine.make_private(...,
  grad_sample_mode="ghost")`` builds: ``GradSampleModuleFastGradientClipping`` (per-example
  norms from hooks), ``DPLossFastGradientClipping`` (a second backward of the clip-weighted
  loss gives the clipped sum) and ``DPOptimizerFastGradientClipping`` (opacus' noise, std 1,
  and division by the expected batch, ``loss_reduction="mean"``) around the same Adam;
- ``functorch-sdpa``: the shipped model with its attention replaced by
  ``torch.nn.functional.scaled_dot_product_attention`` (for comparison; see the model rules in isoeps/privacy/per_sample.py).

Each ratio is DP / non-private on the same model variant, best of ``--repeats`` interleaved
rounds (each round: the mean of ``--steps`` steps after a warm-up step).

``opacus-ghost`` runs at ``--scales 1`` only (reported as skipped otherwise: opacus 1.6's ghost
``nn.Embedding`` norm sampler cannot take the non-contiguous per-scale token slices).

Usage: ``.venv/bin/python benchmarks/bench_dpsgd.py [--scales 1] [--repeats 5] [--steps 3]``
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import warnings
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
from isoeps.privacy.guard import PrivateData
from isoeps.privacy.per_sample import create_backend

BATCH = 64
#: The variant whose DP step is opacus' ghost clipping rather than an isoeps backend.
OPACUS_GHOST = "opacus-ghost"


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

    def plain() -> None:
        per_example_loss(model, batch).mean().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    if backend == OPACUS_GHOST:
        return plain, opacus_ghost_step(model, optimizer, batch)
    # gaussian_noise draws from a guard's randomness, as in the engine (one seed per step).
    guard = PrivateData(range(BATCH), seed=0)
    per_sample = create_backend(backend, module=model, loss_fn=per_example_loss, params=params)

    def private() -> None:
        summed = per_sample.clipped_sum(batch, clip_norm=1.0)
        noise = gaussian_noise(guard, list(summed.values()), std=1.0)
        for (name, p), draw in zip(params.items(), noise):
            p.grad = summed[name].add_(draw).div_(BATCH)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return plain, private


def opacus_ghost_step(
    model: ScaleCausalTransformer, optimizer: torch.optim.Optimizer, batch: dict[str, torch.Tensor]
) -> Callable[[], None]:
    """The DP step done by opacus' ghost clipping (C = 1, noise multiplier 1, divided by the
    expected batch), on the parameters that require grad, wrapping ``optimizer``."""
    from opacus.grad_sample import GradSampleModuleFastGradientClipping
    from opacus.optimizers import DPOptimizerFastGradientClipping
    from opacus.utils.fast_gradient_clipping_utils import DPLossFastGradientClipping

    module = GradSampleModuleFastGradientClipping(
        model, batch_first=True, loss_reduction="mean", max_grad_norm=1.0, use_ghost_clipping=True
    )
    dp_optimizer = DPOptimizerFastGradientClipping(
        optimizer,
        noise_multiplier=1.0,
        max_grad_norm=1.0,
        expected_batch_size=BATCH,
        loss_reduction="mean",
    )

    class PerExampleLoss:
        """A criterion for DPLossFastGradientClipping: the model's per-example losses."""

        reduction = "mean"

        def __call__(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
            return per_example_loss(model, inputs)

    loss = DPLossFastGradientClipping(module, dp_optimizer, PerExampleLoss(), "mean")
    # opacus records activations only in training mode; as the isoeps opacus backend does, only
    # the modules owning trainable parameters are flipped, during the DP step, and the hooks are
    # disabled in between (they still fire in the non-private step, but return at once).
    hooked = [
        m for m in model.modules() if any(p.requires_grad for p in m.parameters(recurse=False))
    ]
    module.disable_hooks()

    def private() -> None:
        module.enable_hooks()
        for m in hooked:
            m.training = True
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Full backward hook is firing")
                loss(batch).backward()  # two backward passes: norms, then the clipped sum
        finally:
            module.disable_hooks()
            for m in hooked:
                m.training = False
        dp_optimizer.step()  # + N(0, 1) per coordinate, / BATCH, Adam
        dp_optimizer.zero_grad(set_to_none=True)

    return private


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
    parser.add_argument("--variants", default=f"functorch,opacus,bk,{OPACUS_GHOST},functorch-sdpa")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    # The 32x32 default: L = 2 Haar levels, 2x2 patches on the 8x8 LL band -> 16 tokens/scale.
    config = ARConfig(vocab_sizes=(512, 512, 512), tokens_per_scale=16, dim=128, depth=4, heads=4)
    batch = make_batch(config, args.scales)
    variants = {}
    skipped = {}
    for name in args.variants.split(","):
        if name == OPACUS_GHOST and args.scales > 1:
            # opacus 1.6's ghost nn.Embedding norm sampler calls input_ids.view(-1, 1), which
            # fails on the non-contiguous per-scale token slices the model embeds at scales > 1.
            skipped[name] = "opacus 1.6 ghost Embedding norm sampler needs contiguous ids"
            continue
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
    rows.update({name: {"skipped": why} for name, why in skipped.items()})
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
