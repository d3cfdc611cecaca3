"""How well does the PUBLIC spectral tokenizer reconstruct private-distribution faces, per config?

    .venv/bin/python benchmarks/bench_tokenizer_coverage.py

Fits the AR family's tokenizer on 4,000 public faces of the quick suite (shift: both) for a few
(codebook_size, base_patch) settings and prints the reconstruction PSNR of the 1,000 reference
faces (per scale) and of 1,000 held-back public faces, with the fitting time. The reference split
follows the private distribution (textures and colours the public split rarely has) without being
the private records, which only the PrivateData guard may hand out; so this is the ceiling the
private finetune of the AR methods works under.
"""

from __future__ import annotations

import json
import time

import numpy as np

SETTINGS = ((512, 2), (2048, 2), (512, 1))  # (codebook_size, base_patch); (512, 2) is the default


def main() -> None:
    from isoeps.datasets.api import load_splits
    from isoeps.models.tokenizer import SpectralTokenizer, TokenizerConfig, psnr, to_float

    splits = load_splits(
        "synthetic-faces",
        ["reference", "public"],
        resolution=32,
        n={"reference": 1000, "public": 20000},
        options={"shift": "both"},
    )
    public = splits["public"].images
    fit_idx = np.sort(np.random.default_rng(0).permutation(len(public))[:4000])
    private_like = to_float(splits["reference"].images)
    held_back = to_float(np.delete(public, fit_idx, axis=0)[:1000])
    for codebook_size, base_patch in SETTINGS:
        start = time.perf_counter()
        tokenizer = SpectralTokenizer(
            TokenizerConfig(codebook_size=codebook_size, base_patch=base_patch), resolution=32
        )
        tokenizer.fit(to_float(public[fit_idx]), seed=0)
        seconds = time.perf_counter() - start
        print(
            json.dumps(
                {
                    "codebook_size": codebook_size,
                    "base_patch": base_patch,
                    "tokens_per_scale": tokenizer.tokens_per_scale,
                    "fit_seconds": round(seconds, 1),
                    "reference_psnr": round(
                        psnr(tokenizer.decode(tokenizer.encode(private_like)), private_like), 2
                    ),
                    "reference_psnr_per_scale": {
                        k: round(v, 2) for k, v in tokenizer.psnr_per_scale(private_like).items()
                    },
                    "public_held_back_psnr": round(
                        psnr(tokenizer.decode(tokenizer.encode(held_back)), held_back), 2
                    ),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
