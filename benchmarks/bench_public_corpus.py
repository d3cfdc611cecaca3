"""Which out-of-domain public corpus suits Fashion-MNIST: the tokenizer's reconstruction of it.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_public_corpus.py

The fmnist suite pretrains on public data out of domain (ImageNet's role in DPImageBench).
For each candidate corpus, in gray, this fits the AR family's spectral tokenizer as the fmnist
suite does (2,000 public images, the default codebooks) and prints the reconstruction PSNR,
overall and per scale, of 1,000 F-MNIST test images (the reference split, zero-padded to 32 px
as the generators see it; never the private records). The tokenizer is the ceiling the private
finetune of the AR methods works under; end-to-end public rows are in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import json
import time

CORPORA = {
    "skimage-photos": {"grayscale": True},
    "synthetic-scenes": {"grayscale": True},
}


def main() -> None:
    from isoeps.datasets.api import load_splits
    from isoeps.models.ar_pretrain import fit_tokenizer
    from isoeps.models.tokenizer import TokenizerConfig, psnr, to_float

    reference = load_splits("fashion-mnist", ["reference"], n={"reference": 1000})["reference"]
    target = to_float(reference.images)
    for name, options in CORPORA.items():
        public = load_splits(name, ["public"], n={"public": 20000}, options=options)["public"]
        start = time.perf_counter()
        tokenizer, public_psnr = fit_tokenizer(
            public, config=TokenizerConfig(), seed=0, max_images=2000
        )
        row = {
            "public": name,
            "options": options,
            "fit_seconds": round(time.perf_counter() - start, 1),
            "public_psnr_per_scale": {k: round(v, 2) for k, v in public_psnr.items()},
            "fmnist_psnr": round(psnr(tokenizer.decode(tokenizer.encode(target)), target), 2),
            "fmnist_psnr_per_scale": {
                k: round(v, 2) for k, v in tokenizer.psnr_per_scale(target).items()
            },
        }
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
