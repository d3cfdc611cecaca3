"""Per-cell harness overhead: one ``public`` cell of the test double through ``run_cell``,
and the captioned sample grid alone, best of 5 each, in the same run.

    ISOEPS_CACHE_DIR=/tmp/ohcache .venv/bin/python benchmarks/bench_harness.py
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "bench"))

import harness_plugin

from isoeps.bench import cells, runner, spec
from isoeps.bench.grid import save_grid


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    suite = spec.validate(
        yaml.safe_load(harness_plugin.suite_yaml(budgets=["public"], n_samples=36)), origin="bench"
    )
    cell = cells.expand(suite)[0]
    cell_times, grid_times = [], []
    images = np.zeros((36, 3, 8, 8), np.uint8)
    for k in range(5):
        started = time.perf_counter()
        runner.run_cell(cell, folder=tmp / f"cell{k}")
        cell_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        save_grid(tmp / f"grid{k}.png", images, ["a red square"] * 36, title="bench")
        grid_times.append(time.perf_counter() - started)
    print(
        json.dumps(
            {
                "cell_best_s": min(cell_times),
                "grid36_best_s": min(grid_times),
                "grid36_over_cell": min(grid_times) / min(cell_times),
            }
        )
    )


if __name__ == "__main__":
    main()
