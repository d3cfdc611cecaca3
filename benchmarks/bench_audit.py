"""The one-run audit's tightness: epsilon_lower against the target, and what an audit costs.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_audit.py engine --out benchmarks/audit-engine.jsonl
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_audit.py methods --out benchmarks/audit-methods.jsonl
    .venv/bin/python benchmarks/bench_audit.py summarise benchmarks/audit-*.jsonl

``engine``: the white-box audit of the DP-SGD engine on its probe
(:func:`isoeps.privacy.white_box_audit.white_box_audit`: Dirac gradient canaries, full
batches, one step, so the mechanism is one Gaussian release and sigma is the calibrated one),
at several targets and ``inf`` (no clipping, no noise: the most any audit of that (m, k) can
show), over seeds.

``methods``: every built-in method's cell audited as ``isoeps audit`` does
(:func:`isoeps.bench.audit.run_audit`), black-box for all and white-box for the DP-SGD ones,
at epsilon 1, 10 and ``inf``, on synthetic faces at 16x16 with the methods at seconds-scale
sizes (the audit's cost and soundness at the harness's real code paths, not sample quality).

Each line of ``--out`` is one audit; an existing line (same key) is not redone.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

DELTA = 1e-5
ENGINE_BUDGETS = (1, 2, 4, 8, "inf")
ENGINE_KS = (25, 50, 100)
ENGINE_M = 1000
_AR = {
    "codebook_size": 32, "kmeans_iters": 3, "tokenizer_images": 100, "dim": 32, "depth": 1,
    "heads": 2, "mlp_ratio": 2, "pretrain_steps": 10, "pretrain_batch_size": 16,
    "sr_width": 16, "sr_blocks": 1, "sr_steps": 3, "sr_batch_size": 8, "sample_batch_size": 8,
    "dp_sgd": {"steps": 20, "expected_batch_size": 50, "max_physical_batch_size": 64},
}  # fmt: skip
_AGG = {
    "resolution": 16, "unet_channels": (16, 32), "pretrain_steps": 2, "pretrain_batch_size": 4,
    "expected_records": 3, "ti_steps": 2, "sampler_steps": 2,
}  # fmt: skip
METHODS = {
    "wavelet-two-stage": (_AR, ("black-box", "white-box")),
    "dpsgd-full-finetune": (_AR, ("black-box", "white-box")),
    "dpagg-ti": (_AGG, ("black-box",)),
}
METHOD_BUDGETS = (1, 10, "inf")
METHOD_SEEDS = (0, 1)
METHOD_M, METHOD_K = 1000, 50


def _done(out: Path) -> set[str]:
    if not out.is_file():
        return set()
    return {json.loads(line)["key"] for line in out.read_text().splitlines() if line.strip()}


def _append(out: Path, row: dict) -> None:
    with out.open("a") as handle:
        handle.write(json.dumps(row) + "\n")
    print(json.dumps({k: v for k, v in row.items() if k != "key"}), flush=True)


def run_engine(out: Path, seeds: int) -> None:
    """The engine's white-box audit at each target, k and seed."""
    from isoeps.accountants import PrivacyBudget
    from isoeps.privacy.white_box_audit import white_box_audit

    done = _done(out)
    for budget in ENGINE_BUDGETS:
        for k in ENGINE_KS:
            for seed in range(seeds):
                key = f"engine/{budget}/m{ENGINE_M}/k{k}/s{seed}"
                if key in done:
                    continue
                started = time.time()
                outcome = white_box_audit(
                    m=ENGINE_M, k=k, records=ENGINE_M, budget=PrivacyBudget.parse(budget, delta=DELTA),
                    sample_rate=1.0, steps=1, cell_seed=seed,
                )  # fmt: skip
                _append(out, {
                    "key": key, "what": "engine probe, white-box", "budget": str(budget),
                    "m": ENGINE_M, "k": k, "beta": 0.05, "seed": seed,
                    "epsilon_lower": outcome.epsilon_lower, "correct": outcome.correct,
                    "noise_multiplier": outcome.noise_multiplier, "wall_s": time.time() - started,
                })  # fmt: skip


def _method_cell(method: str, budget, seed: int, workdir: Path):
    from isoeps.bench import cells
    from isoeps.bench.spec import validate

    config, _ = METHODS[method]
    spec = validate(
        {
            "name": "bench-audit",
            "datasets": {
                "faces": {
                    "name": "synthetic-faces",
                    "resolution": 16,
                    "n": {"private": 1000, "reference": 200, "eval": 200},
                }
            },
            "methods": {method: {"method": method, "config": config}},
            "budgets": [budget],
            "seeds": [seed],
            "delta": DELTA,
            "metrics": {},
            "runtime": {"results": str(workdir / "results")},
        },
        origin="bench_audit",
    )
    (cell,) = cells.expand(spec)
    return cell, spec.runtime


def run_methods(out: Path) -> None:
    """Every built-in method's audited cell, each kind, budget and seed."""
    from isoeps.bench.audit import AuditSettings, run_audit

    done = _done(out)
    with tempfile.TemporaryDirectory() as tmp:
        for method, (_, kinds) in METHODS.items():
            for kind in kinds:
                for budget in METHOD_BUDGETS:
                    for seed in METHOD_SEEDS:
                        key = f"{method}/{kind}/{budget}/m{METHOD_M}/k{METHOD_K}/s{seed}"
                        if key in done:
                            continue
                        cell, runtime = _method_cell(method, budget, seed, Path(tmp))
                        settings = AuditSettings(m=METHOD_M, k=METHOD_K, kind=kind)
                        folder = Path(tmp) / key.replace("/", "_")
                        outcome = run_audit(cell, folder, runtime, settings=settings)
                        _append(out, {"key": key, "what": f"{method}, {kind}", "budget": str(budget),
                                      "seed": seed, **outcome.to_dict()})  # fmt: skip


def summarise(paths: list[Path]) -> None:
    """Per (what, budget, m, k): the bounds over seeds (min / mean / max) and the run time."""
    groups: dict[tuple, list[dict]] = {}
    for path in paths:
        for line in path.read_text().splitlines():
            row = json.loads(line)
            key = (row["what"], row["budget"], row["m"], row["k"])
            groups.setdefault(key, []).append(row)
    print("| audit | target ε | m | k | β | ε_lower min / mean / max (seeds) | wall s (mean) |")
    print("|---|---|---|---|---|---|---|")
    for (what, budget, m, k), rows in groups.items():
        bounds = [r["epsilon_lower"] for r in rows]
        wall = [r.get("wall_s", r.get("wall_time_s", math.nan)) for r in rows]
        print(
            f"| {what} | {budget} | {m} | {k} | {rows[0]['beta']:g} | {min(bounds):.3f} / "
            f"{sum(bounds) / len(bounds):.3f} / {max(bounds):.3f} ({len(rows)}) | "
            f"{sum(wall) / len(wall):.1f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["engine", "methods", "summarise"])
    parser.add_argument("paths", nargs="*", type=Path, help="summarise: the JSON lines files")
    parser.add_argument("--out", type=Path, help="JSON lines to append to")
    parser.add_argument("--seeds", type=int, default=5, help="engine: seeds per setting")
    args = parser.parse_args()
    if args.what == "summarise":
        summarise(args.paths)
    elif args.what == "engine":
        run_engine(args.out, args.seeds)
    else:
        run_methods(args.out)


if __name__ == "__main__":
    main()
