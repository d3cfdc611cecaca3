"""Dataset speed: synthetic generation throughput and cached vs uncached COCO-format loading.

Usage::

    .venv/bin/python benchmarks/bench_datasets.py [--repeats 3] [--coco-n 2000] [--out FILE]

Every figure is the best of ``--repeats`` runs. Ratios compare against baselines measured in
the same run: synthetic generation against decoding the same number of JPEGs with PIL, and
cached loads against uncached ones. Everything is written under a temp dir (the isoeps cache
is pointed there too), so the user's cache is untouched.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image


def best_of(repeats: int, fn, *, before=None, clock=time.perf_counter) -> float:
    """The fastest of ``repeats`` runs of ``fn`` on ``clock`` (wall by default)."""
    times = []
    for _ in range(repeats):
        if before:
            before()
        start = clock()
        fn()
        times.append(clock() - start)
    return min(times)


def make_coco(root: Path, *, n: int, size: tuple[int, int]) -> None:
    """A COCO-format pool (train2017) of ``n`` smooth-plus-noise JPEGs with 5 captions each."""
    rng = np.random.default_rng(0)
    (root / "train2017").mkdir(parents=True)
    (root / "annotations").mkdir()
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w] / max(w, h)
    images, annotations = [], []
    for i in range(1, n + 1):
        a = rng.uniform(0, 255, (3, 3))
        pixels = np.stack([a[c, 0] * xx + a[c, 1] * yy + a[c, 2] * 0.3 for c in range(3)], -1)
        pixels = np.clip(pixels + rng.normal(0, 12, pixels.shape), 0, 255).astype(np.uint8)
        name = f"{i:012d}.jpg"
        Image.fromarray(pixels).save(root / "train2017" / name, quality=90)
        images.append({"id": i, "file_name": name, "width": w, "height": h})
        annotations += [
            {"id": i * 10 + k, "image_id": i, "caption": f"image {i} caption {k}"} for k in range(5)
        ]
    (root / "annotations" / "captions_train2017.json").write_text(
        json.dumps({"images": images, "annotations": annotations})
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--synthetic-n", type=int, default=2000)
    parser.add_argument("--coco-n", type=int, default=2000)
    parser.add_argument("--coco-size", type=int, nargs=2, default=(320, 240), metavar=("W", "H"))
    parser.add_argument(
        "--full",
        action="store_true",
        help="also time one 10k@64 and one 20k@32 synthetic-faces load",
    )
    parser.add_argument("--out", help="write the markdown report here")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="isoeps-bench-datasets-"))
    os.environ["ISOEPS_CACHE_DIR"] = str(work / "cache")
    from isoeps.cache import cache_dir
    from isoeps.datasets import load_split
    from isoeps.ops.images import pil_to_chw, resize_pil

    lines = []
    try:
        coco = work / "coco"
        make_coco(coco, n=args.coco_n, size=tuple(args.coco_size))
        files = sorted((coco / "train2017").iterdir())

        def decode(count: int, resolution: int) -> None:
            for path in files[:count]:
                with Image.open(path) as image:
                    pil_to_chw(resize_pil(image, resolution=resolution))

        # Synthetic throughput vs decoding the same number of JPEGs (single thread).
        lines += [
            "## Synthetic generation",
            "",
            (
                f"n = {args.synthetic_n} private images per run; baseline: PIL decode + "
                f"center-crop-bicubic of {min(args.synthetic_n, len(files))} "
                f"{args.coco_size[0]}x{args.coco_size[1]} JPEGs to the same resolution "
                "(one thread)."
            ),
            "",
            (
                "| dataset | resolution | best wall s | best CPU s | images/CPU s | "
                "JPEG decode images/CPU s | ratio (synthetic/decode) |"
            ),
            "|---|---|---|---|---|---|---|",
        ]
        for resolution in (32, 64):
            count = min(args.synthetic_n, len(files))
            jpeg = (
                best_of(args.repeats, partial(decode, count, resolution), clock=time.process_time)
                / count
            )
            for name in ("synthetic-faces", "synthetic-scenes"):
                run = partial(
                    load_split, name, "private", resolution=resolution, n=args.synthetic_n
                )
                wall = best_of(args.repeats, run)
                cpu = best_of(args.repeats, run, clock=time.process_time)
                rate = args.synthetic_n / cpu
                lines.append(
                    f"| {name} | {resolution} | {wall:.2f} | {cpu:.2f} | {rate:.0f} | "
                    f"{1 / jpeg:.0f} | {rate * jpeg:.2f}x |"
                )
        if args.full:
            lines += ["", "| full load (one run) | wall s | CPU s |", "|---|---|---|"]
            for n, resolution in ((10000, 64), (20000, 32)):
                wall, cpu = time.perf_counter(), time.process_time()
                load_split("synthetic-faces", "private", resolution=resolution, n=n)
                lines.append(
                    f"| synthetic-faces private n={n} @ {resolution} | "
                    f"{time.perf_counter() - wall:.1f} | {time.process_time() - cpu:.1f} |"
                )

        # COCO-format loading: uncached, cold cache (decode + write), warm cache.
        def load(cache: bool) -> None:
            split = load_split(
                "coco",
                "private",
                root=str(coco),
                resolution=64,
                options={"cache": cache, "splits": {"private": {"source": "train2017"}}},
            )
            assert len(split) == args.coco_n

        def clear() -> None:
            shutil.rmtree(cache_dir() / "datasets", ignore_errors=True)

        uncached = best_of(args.repeats, lambda: load(False))
        cold = best_of(args.repeats, lambda: load(True), before=clear)
        load(True)
        warm = best_of(args.repeats, lambda: load(True))
        lines += [
            "",
            "## COCO-format loading",
            "",
            (
                f"{args.coco_n} JPEGs of {args.coco_size[0]}x{args.coco_size[1]} in the official "
                "layout, loaded as the private split at 64x64 (center-crop-bicubic, 4 decode "
                "threads, includes parsing the captions JSON)."
            ),
            "",
            "| load | best s | vs uncached |",
            "|---|---|---|",
            f"| uncached (decode every JPEG) | {uncached:.2f} | 1.00x |",
            f"| cold cache (decode + atomic write) | {cold:.2f} | {cold / uncached:.2f}x |",
            f"| warm cache | {warm:.3f} | {warm / uncached:.3f}x ({uncached / warm:.0f}x faster) |",
        ]
    finally:
        shutil.rmtree(work, ignore_errors=True)

    load_avg = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    header = [
        "# Dataset benchmarks",
        "",
        (
            f"Date: {datetime.date.today().isoformat()}. Command: "
            f"`.venv/bin/python benchmarks/bench_datasets.py {' '.join(sys.argv[1:])}`. "
            f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, load average {load_avg:.1f} at "
            f"the end (the machine is shared, so wall times vary; CPU seconds and ratios are the "
            f"steadier figures). "
            f"Best of {args.repeats} runs."
        ),
        "",
    ]
    report = "\n".join(header + lines) + "\n"
    print(report)
    if args.out:
        Path(args.out).write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
