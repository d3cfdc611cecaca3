"""The k-means tokenizer against the learned one, at equal tokens per scale, on the data of the
quick suite (faces) and the fmnist suite (public gray photographs, Fashion-MNIST reference).

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_tokenizers.py --data faces \
        --out benchmarks/tokenizers.jsonl
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_tokenizers.py --data fmnist \
        --out benchmarks/tokenizers.jsonl

Each tokenizer is fitted on the suite's PUBLIC images only (4,000 for faces, as the quick suite
does; 2,000 for fmnist, as that suite does), with the AR family's defaults unless
``--set field=value`` (a LearnedTokenizerConfig field) says otherwise. Measured on 1,000 images
of the reference split (the private distribution, without being the private records) and on
1,000 held-back public images: PSNR per scale (the image decoded from the first s + 1 scales
against the exact level-(L - s) approximation), rFID and KID of the full reconstructions
against their originals on the reference split (Inception features, n = 1,000 each: FID is
biased at this n, so it compares rows of this table only), and the fit's wall time on this CPU. One line of ``--out``
per (data, tokenizer, settings).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

#: (dataset, options, public dataset, public options, public images fitted on) per --data.
DATA = {
    "faces": ("synthetic-faces", {"shift": "both"}, "synthetic-faces", {"shift": "both"}, 4000),
    "fmnist": ("fashion-mnist", {}, "skimage-photos", {"grayscale": True}, 2000),
}
EVAL_N = 1000


def load(data: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(public fit images, reference images, held-back public images)``, uint8."""
    from isoeps.datasets.api import load_split

    name, options, public_name, public_options, fit_n = DATA[data]
    public = load_split(
        public_name, "public", resolution=32, n=fit_n + EVAL_N, options=public_options
    ).images
    reference = load_split(name, "reference", resolution=32, n=EVAL_N, options=options).images
    return public[:fit_n], reference, public[fit_n:]


def measure(tokenizer, images: np.ndarray, backbone=None) -> dict[str, object]:
    """PSNR (all and per scale) of ``images`` through ``tokenizer``; rFID and KID too when a
    ``backbone`` is given."""
    from isoeps.metrics.features import image_features
    from isoeps.metrics.fid import fid_from_features
    from isoeps.metrics.kid import kid_subsets
    from isoeps.models.tokenizer import psnr, to_float, to_uint8

    originals = to_float(images)
    recon = tokenizer.decode(tokenizer.encode(originals))
    scores: dict[str, object] = {
        "psnr": round(psnr(recon, originals), 2),
        "psnr_per_scale": {k: round(v, 2) for k, v in tokenizer.psnr_per_scale(originals).items()},
    }
    if backbone is None:
        return scores
    real = image_features(backbone, images)
    fake = image_features(backbone, to_uint8(recon))
    rfid, _ = fid_from_features(fake, real)
    kid = kid_subsets(fake, real, num_subsets=1, subset_size=EVAL_N)
    return {
        "psnr": round(psnr(recon, originals), 2),
        "psnr_per_scale": {k: round(v, 2) for k, v in tokenizer.psnr_per_scale(originals).items()},
        "rfid": round(rfid, 2),
        # One unbiased estimate: a subset of size n is the whole set, so subsets do not vary.
        "kid": round(float(kid.mean()), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", choices=sorted(DATA), required=True)
    parser.add_argument("--tokenizer", choices=["kmeans", "learned", "both"], default="both")
    parser.add_argument("--set", action="append", default=[], help="learned field=value")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    from isoeps.metrics.backbones import load_backbone
    from isoeps.models.ar_pretrain import build_tokenizer
    from isoeps.models.learned_tokenizer import LearnedTokenizerConfig
    from isoeps.models.tokenizer import TokenizerConfig, to_float

    overrides = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    if "fsq_levels" in overrides:
        overrides["fsq_levels"] = tuple(overrides["fsq_levels"])
    configs = {"kmeans": TokenizerConfig(), "learned": LearnedTokenizerConfig(**overrides)}
    chosen = list(configs) if args.tokenizer == "both" else [args.tokenizer]
    public, reference, held_back = load(args.data)
    backbone = load_backbone("inception")
    for kind in chosen:
        tokenizer = build_tokenizer(configs[kind], resolution=32)
        start = time.perf_counter()
        tokenizer.fit(to_float(public), seed=0, show_progress=True)
        seconds = time.perf_counter() - start
        row = {
            "data": args.data,
            "tokenizer": kind,
            "config": tokenizer.metadata()["config"],
            "tokens_per_scale": tokenizer.tokens_per_scale,
            "vocab_size": tokenizer.vocab_size,
            "public_fitted_on": len(public),
            "fit_seconds": round(seconds, 1),
            "reference": measure(tokenizer, reference, backbone),
            "public_held_back": measure(tokenizer, held_back),
            "n": EVAL_N,
            "date": time.strftime("%Y-%m-%d"),
        }
        print(json.dumps(row))
        with args.out.open("a") as handle:
            handle.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
