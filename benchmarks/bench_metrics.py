"""Metric speed and memory: Inception pipeline overhead; chunked PRDC vs the prdc package.

    .venv/bin/python benchmarks/bench_metrics.py [--images 32] [--repeats 3]
        [--pr-sizes 10000,20000] [--prdc-size 10000] [--dim 2048] [--device cpu]

1. Inception features (images/s) through the full pipeline (clean resize + network, which
   feeds channels_last), against a bare forward of the same network on pre-resized inputs in
   the same run, in the default contiguous layout and in channels_last; best of repeats.
2. Peak resident memory and wall time of our precision/recall/density/coverage at each N (D =
   ``--dim``), and of ``prdc.compute_prdc`` at ``--prdc-size``; each in a fresh subprocess,
   peak = VmHWM of that process (ru_maxrss would carry the parent's peak across exec). ``baseline_mb`` is the peak right after making the
   features (imports + data), so ``peak - baseline`` is the metric's own working memory.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def bench_inception(images: int, repeats: int, device: str) -> dict:
    import numpy as np
    import torch

    from isoeps.metrics.backbones import InceptionBackbone
    from isoeps.metrics.preprocess import resize_clean

    rng = np.random.default_rng(0)
    batch = rng.integers(0, 256, size=(images, 3, 32, 32), dtype=np.uint8)
    backbone = InceptionBackbone(device=device)
    resized = torch.from_numpy(resize_clean(batch, size=299)).to(device)
    backbone.features(batch[:4])  # warm-up (TorchScript profiling runs)
    channels_last = resized.contiguous(memory_format=torch.channels_last)
    pipeline, bare, bare_channels_last = [], [], []
    for _ in range(repeats):
        start = time.perf_counter()
        backbone.features(batch, batch_size=images)
        pipeline.append(time.perf_counter() - start)
        with torch.inference_mode():
            start = time.perf_counter()
            contiguous_out = backbone.forward_resized(resized).cpu()
            bare.append(time.perf_counter() - start)
            start = time.perf_counter()
            channels_last_out = backbone.forward_resized(channels_last).cpu()
            bare_channels_last.append(time.perf_counter() - start)
    return {
        "images": images,
        "pipeline_images_per_s": images / min(pipeline),
        "bare_images_per_s": images / min(bare),
        "bare_channels_last_images_per_s": images / min(bare_channels_last),
        "channels_last_speedup": min(bare) / min(bare_channels_last),
        "channels_last_max_abs_diff": float((contiguous_out - channels_last_out).abs().max()),
        "overhead_vs_channels_last": min(pipeline) / min(bare_channels_last) - 1,
    }


def _peak_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(kind: str, n: int, dim: int, device: str) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    real = rng.normal(size=(n, dim)).astype(np.float32)
    fake = (rng.normal(size=(n, dim)) * 1.1 + 0.05).astype(np.float32)
    baseline = _peak_mb()
    start = time.perf_counter()
    if kind == "ours":
        from isoeps.metrics.prdc import prdc

        result = prdc(real, fake, device=device)
    else:
        from prdc import compute_prdc

        result = compute_prdc(real, fake, nearest_k=5)
    seconds = time.perf_counter() - start
    peak = _peak_mb()
    print(
        json.dumps(
            {
                "kind": kind,
                "n": n,
                "dim": dim,
                "seconds": seconds,
                "peak_mb": peak,
                "baseline_mb": baseline,
                "result": result,
            }
        )
    )


def bench_pr(kind: str, n: int, dim: int, device: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(n), str(dim), device],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pr-sizes", default="10000,20000")
    parser.add_argument("--prdc-size", type=int, default=10000)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--skip-inception", action="store_true")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, n, dim, device = args.child
        _child(kind, int(n), int(dim), device)
        return
    report: dict = {}
    if not args.skip_inception:
        report["inception"] = bench_inception(args.images, args.repeats, args.device)
        print(json.dumps(report["inception"]), flush=True)
    report["pr"] = []
    if args.prdc_size:
        report["pr"].append(bench_pr("prdc", args.prdc_size, args.dim, args.device))
        print(json.dumps(report["pr"][-1]), flush=True)
    for n in (int(s) for s in args.pr_sizes.split(",") if s):
        report["pr"].append(bench_pr("ours", n, args.dim, args.device))
        print(json.dumps(report["pr"][-1]), flush=True)


if __name__ == "__main__":
    main()
