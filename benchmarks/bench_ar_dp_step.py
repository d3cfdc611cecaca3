"""DP step (per-sample grads + clip) vs non-private step for the AR model at batch 64.

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_ar_dp_step.py (best of 5 each)."""

import time

import torch

from isoeps.models.ar_transformer import ARConfig, ScaleCausalTransformer, per_example_loss
from isoeps.privacy.per_sample import clip_and_sum, create_backend

torch.manual_seed(0)
model = ScaleCausalTransformer(ARConfig(vocab_sizes=(512,) * 3, tokens_per_scale=16)).eval()
B = 64


def best_of(fn) -> float:
    """Best wall time of 5 runs after one warm-up."""
    fn()
    times = []
    for _ in range(5):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def measure(scales: int) -> dict[str, float]:
    batch = {
        "tokens": torch.randint(512, (B, 16 * scales)),
        "text": torch.randn(B, 1, 384),
        "text_mask": torch.ones(B, 1, dtype=torch.bool),
    }
    names = set(model.scale_parameter_names(range(scales)))
    params = {n: p for n, p in model.named_parameters() if n in names}
    for n, p in model.named_parameters():
        p.requires_grad_(n in names)

    def plain() -> None:
        torch.autograd.grad(per_example_loss(model, batch).sum(), list(params.values()))

    best = {"non-private": best_of(plain)}
    for name in ("functorch", "opacus"):
        backend = create_backend(name, module=model, loss_fn=per_example_loss, params=params)
        best[name] = best_of(lambda b=backend: clip_and_sum(b.compute(batch), clip_norm=1.0))
        backend.close()
    best["non-private (again)"] = best_of(plain)
    return best


for scales in (1, 3):
    best = measure(scales)
    base = best["non-private"]
    print(
        f"scales={scales} tokens={16 * scales}: "
        + ", ".join(f"{k} {v * 1000:.0f} ms ({v / base:.2f}x)" for k, v in best.items())
    )
