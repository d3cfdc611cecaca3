"""Stage 2 of wavelet-two-stage, three ways, on the same stage-1 draws: sr, ar, real-esrgan.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_upsamplers.py --suite quick \
        --out benchmarks/upsamplers-quick.jsonl
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_upsamplers.py --suite fmnist \
        --out benchmarks/upsamplers-fmnist.jsonl
    .venv/bin/python benchmarks/bench_upsamplers.py --summarise benchmarks/upsamplers-*.jsonl

For every (epsilon, seed) of the suite's wavelet-two-stage rows, one stage-1 fit goes through
the harness's own path (``fit_cell``: public models from the cache, the guard, the ledger,
the re-accounting). The three backends are then applied in turn to that one fitted model. The
upsampler is post-processing, so the ledger is the same for all three. Sampling restarts its
generator on every call, so the stage-1 tokens are identical and the comparison is paired by
construction. The suite's metrics that read images are measured on each backend's samples:
KID, FID, attribute or class metrics, and the spectrum metrics with their per-band log energy
ratios against the reference split (H1/V1/D1 are the finest band). Also measured: the CPU time
(``time.process_time``, every thread) per 1,000 images of the whole draw and of stage 2 alone.
Each line of ``--out`` is one (epsilon, seed, upsampler); an existing line is not redone.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

UPSAMPLERS = ("sr", "ar", "real-esrgan")
METRICS = ("kid", "fid", "attr", "spectrum")


def wavelet_cells(suite: str, overrides: list[str]) -> list:
    """The suite's wavelet-two-stage cells at the measured budgets, image metrics only."""
    from isoeps.bench.cells import expand
    from isoeps.bench.spec import load_suite, validate

    data = load_suite(suite, overrides).model_dump(mode="json")
    data["methods"] = {"wavelet-two-stage": data["methods"]["wavelet-two-stage"]}
    data["budgets"] = [b for b in data["budgets"] if b != "public"]  # no stage-1 fit
    # Every image metric, with the suite's options where it has them (fmnist has no spectrum).
    data["metrics"] = {name: data["metrics"].get(name, {}) for name in METRICS}
    data["extraction_samples"] = 0
    return expand(validate(data, origin=f"{suite} (bench_upsamplers)"))


def draw_timed(cell, fitted) -> tuple:
    """The cell's samples, the CPU seconds of the whole draw and of stage 2 inside it."""
    from isoeps.bench.cell_flow import draw_samples

    method = fitted.method
    stage2 = [0.0]
    full_resolution = type(method).full_resolution

    def timed(*args, **kwargs):
        started = time.process_time()
        images = full_resolution(method, *args, **kwargs)
        stage2[0] += time.process_time() - started
        return images

    method.full_resolution = timed  # an instance attribute: sample() calls it as self's
    started = time.process_time()
    try:
        drawn = draw_samples(cell, fitted)
    finally:
        del method.full_resolution
    return drawn, time.process_time() - started, stage2[0]


def measure_backend(cell, fitted, upsampler: str) -> dict:
    """One backend on the fitted model: its metric values and CPU time per 1,000 images."""
    from isoeps.bench.measure import measure

    method = fitted.method
    method.config = method.config.model_copy(update={"upsampler": upsampler})
    method._pretrained = None  # the pretrained model of the previous backend, if any
    drawn, draw_s, stage2_s = draw_timed(cell, fitted)
    images = cell.n_samples + (cell.open_prompt_samples or 0)
    values = measure(cell, drawn=drawn, data=fitted.data, device="cpu")
    return {
        "upsampler": upsampler,
        "images": images,
        "cpu_s_per_1000": round(1000 * draw_s / images, 2),
        "stage2_cpu_s_per_1000": round(1000 * stage2_s / images, 2),
        "values": {
            v["name"]: {"value": v["value"], "std": v.get("std"), "details": v.get("details")}
            for v in values
        },
    }


def run(suite: str, out: Path, overrides: list[str]) -> None:
    """Every (budget, seed) of the suite, each backend once, appended to ``out``."""
    from isoeps.bench.cell_flow import fit_cell
    from isoeps.bench.spec import RuntimeSpec

    done = set()
    if out.exists():
        for line in out.read_text().splitlines():
            row = json.loads(line)
            done.add((row["budget"], row["seed"], row["upsampler"]))
    for cell in wavelet_cells(suite, overrides):
        todo = [u for u in UPSAMPLERS if (cell.budget, cell.seed, u) not in done]
        if not todo:
            continue
        with tempfile.TemporaryDirectory() as folder:
            fitted = fit_cell(cell, Path(folder), RuntimeSpec())
        for upsampler in todo:
            row = measure_backend(cell, fitted, upsampler)
            row.update(
                suite=suite,
                budget=cell.budget,
                seed=cell.seed,
                epsilon=fitted.privacy.get("epsilon_achieved"),
                n_samples=cell.n_samples,
            )
            with out.open("a") as handle:
                handle.write(json.dumps(row, default=float) + "\n")
            print(f"{suite} eps {cell.budget} seed {cell.seed} {upsampler}: done", flush=True)


def _band_errors(row: dict) -> dict[str, float]:
    """Per Haar level l: mean |log10 energy ratio| of its detail bands (Hl, Vl, Dl) against
    the reference, as ``band_error_l<l>``; level 1 is the finest."""
    details = row["values"].get("wavelet_band_error", {}).get("details") or {}
    ratios = details.get("log10_energy_ratio") or {}
    errors = {}
    for level in range(1, int(details.get("levels") or 0) + 1):
        bands = [abs(ratios[f"{b}{level}"]) for b in "HVD" if f"{b}{level}" in ratios]
        if bands:
            errors[f"band_error_l{level}"] = sum(bands) / len(bands)
    return errors


def _numbers(row: dict) -> dict[str, float]:
    """The values of one line worth tabulating, the finest band and the stage-2 time added."""
    numbers = {name: v["value"] for name, v in row["values"].items()}
    numbers.update(_band_errors(row))
    # The whole draw's time includes one-off costs of the first backend after a fit (caption
    # embeddings): stage 2 alone is what differs between backends.
    numbers["stage2_cpu_s_per_1000"] = row["stage2_cpu_s_per_1000"]
    return {k: v for k, v in numbers.items() if v is not None and math.isfinite(v)}


def _t_interval(xs) -> str:
    """``mean ± t half-width (n)`` at 95%, or the single value with n = 1."""
    import numpy as np
    from scipy import stats

    xs = np.asarray(xs, dtype=float)
    if len(xs) < 2:
        return f"{xs.mean():.4g} (1)"
    half = stats.t.ppf(0.975, len(xs) - 1) * xs.std(ddof=1) / math.sqrt(len(xs))
    return f"{xs.mean():.4g} ± {half:.2g} ({len(xs)})"


def summarise(paths: list[Path]) -> None:
    """Per suite, budget and backend: each value's mean ± 95% t half-width over seeds (n), then
    each backend's paired difference from ``sr`` (same fit, same stage-1 draws), as Markdown."""
    rows = [json.loads(line) for path in paths for line in path.read_text().splitlines()]
    by_key = {(r["suite"], r["budget"], r["seed"], r["upsampler"]): _numbers(r) for r in rows}
    names = sorted({name for numbers in by_key.values() for name in numbers})
    groups = sorted({(suite, budget, up) for suite, budget, _, up in by_key})
    for title, baseline in (("values", None), ("paired difference from sr", "sr")):
        print(f"\n{title}\n\n| suite | eps | upsampler | " + " | ".join(names) + " |")
        print("|" + "---|" * (3 + len(names)))
        for suite, budget, upsampler in groups:
            if upsampler == baseline:
                continue
            cells = []
            for name in names:
                xs = []
                for (s2, b2, seed, u2), numbers in by_key.items():
                    if (s2, b2, u2) != (suite, budget, upsampler) or name not in numbers:
                        continue
                    base = by_key.get((suite, budget, seed, baseline), {}) if baseline else {}
                    if baseline is None:
                        xs.append(numbers[name])
                    elif name in base:
                        xs.append(numbers[name] - base[name])
                cells.append(_t_interval(xs) if xs else "")
            print(f"| {suite} | {budget} | {upsampler} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", help="quick or fmnist")
    parser.add_argument("--out", type=Path, help="JSON lines to append to")
    parser.add_argument(
        "overrides",
        nargs="*",
        default=["budgets=[1,10,inf]", "seeds=[0,1,2]"],
        help="suite dotlist overrides (default: budgets=[1,10,inf] seeds=[0,1,2])",
    )
    parser.add_argument("--summarise", nargs="+", type=Path, help="JSON lines to summarise")
    args = parser.parse_args()
    from isoeps.cpus import quiet_openmp
    from isoeps.log import setup_logging

    quiet_openmp()
    setup_logging()
    if args.summarise:
        summarise(args.summarise)
    else:
        run(args.suite, args.out, args.overrides)


if __name__ == "__main__":
    main()
