"""DP-LDM's DP step against a non-private step on the same attention-only parameter set.

The model is DP-LDM's default architecture (32x32 images, the method's default autoencoder and
latent UNet); one public step of each is enough, since a step's cost does not depend on the
weights. A DP step is per-sample gradients, per-sample clipping and the sum (the engine's
``clipped_sum``; no noise, no optimizer); the non-private step is one backward pass of the
batch's summed loss to the same parameters. The batch is the method's physical batch, 64.

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_dp_ldm_step.py (best of 5 each).
"""

import time

import numpy as np
import torch

from isoeps.methods.base import MethodContext
from isoeps.methods.dp_ldm import DPLDM
from isoeps.models.diffusion import denoising_loss
from isoeps.privacy.per_sample import create_backend
from isoeps.testing import tiny_split

BATCH = 64
RESOLUTION = 32


def best_of(fn, repeats: int = 5) -> float:
    """Best wall time of ``repeats`` runs after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    torch.manual_seed(0)
    method = DPLDM(
        {"resolution": RESOLUTION, "vae_steps": 1, "pretrain_steps": 1},
        ctx=MethodContext(seed=0, show_progress=False),
    )
    method.pretrain_public(tiny_split("public", n=BATCH, resolution=RESOLUTION))
    model = method.public_model
    unet = model.unet.train()
    names = set(DPLDM.trainable(unet))
    params = {n: p for n, p in unet.named_parameters() if n in names}
    for n, p in unet.named_parameters():
        p.requires_grad_(n in names)
    records = tiny_split("private", n=BATCH, resolution=RESOLUTION)
    rngs = [np.random.default_rng(i) for i in range(BATCH)]
    batch = model.dp_collate(cond_drop_prob=0.1)(records, rngs)
    total = sum(p.numel() for p in unet.parameters())
    trained = sum(p.numel() for p in params.values())
    print(f"UNet parameters {total:,}, attention-only trained {trained:,} ({len(params)} tensors)")

    def plain() -> None:
        torch.autograd.grad(denoising_loss(unet, batch).sum(), list(params.values()))

    best = {"non-private": best_of(plain)}
    for backend_name in ("bk", "functorch", "opacus"):
        backend = create_backend(backend_name, module=unet, loss_fn=denoising_loss, params=params)
        best[backend_name] = best_of(lambda b=backend: b.clipped_sum(batch, clip_norm=1.0))
        backend.close()
    best["non-private (again)"] = best_of(plain)
    base = min(best["non-private"], best["non-private (again)"])
    for name, seconds in best.items():
        print(f"{name:>20}: {seconds * 1000:8.0f} ms  ({seconds / base:.2f}x)")


if __name__ == "__main__":
    main()
