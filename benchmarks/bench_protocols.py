"""FID under the two metric protocols on the same real Fashion-MNIST images.

    .venv/bin/python benchmarks/bench_protocols.py [--n 1000] [--device cpu]

Real against real: ``n`` test images (the samples' role) against ``n`` train images (the
reference), both drawn by seed 0, so the numbers measure the protocols, not a generator.

- isoeps: clean-fid's TorchScript Inception with the "clean" PIL-bicubic resize, on the
  images at the suite's 32x32 (the 28x28 originals zero-padded), as ``fid`` computes it;
- dpimagebench: pytorch-fid's network (the same weights) with its bilinear resize without
  antialiasing, on the 28x28 originals (padding cropped), as ``dpimagebench-fid`` does.

Also isoeps's pipeline on the 28x28 originals, which separates the resize from the padding.
"""

from __future__ import annotations

import argparse
import json
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    from isoeps.datasets import load_split
    from isoeps.metrics.backbones import load_backbone
    from isoeps.metrics.dpimagebench.fidelity import protocol_split
    from isoeps.metrics.dpimagebench.inception import BACKBONE_NAME
    from isoeps.metrics.fid import fid_from_features

    padded = {
        split: load_split("fashion-mnist", split, resolution=32, n=args.n, seed=0)
        for split in ("reference", "private")
    }
    native = {split: protocol_split(data)[0] for split, data in padded.items()}
    rows = []
    for label, backbone_name, data in (
        ("isoeps (clean bicubic, 32x32 padded)", "inception", padded),
        ("isoeps pipeline on 28x28 originals", "inception", native),
        ("dpimagebench (pytorch-fid bilinear, 28x28)", BACKBONE_NAME, native),
    ):
        backbone = load_backbone(backbone_name, device=args.device)
        start = time.perf_counter()
        fake = backbone.features(data["reference"].images)
        real = backbone.features(data["private"].images)
        fid, _ = fid_from_features(fake, real)
        rows.append(
            {
                "protocol": label,
                "fid_test_vs_train": round(fid, 3),
                "n": args.n,
                "seconds": round(time.perf_counter() - start, 1),
            }
        )
        print(json.dumps(rows[-1]), flush=True)


if __name__ == "__main__":
    main()
