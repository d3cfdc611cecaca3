"""Split a finished run's wall time by phase, from each cell's log (benchmarks/RESULTS.md).

    python benchmarks/demo_phases.py RESULTS_DIR

Each run folder's ``log.txt`` opens with the runner's line and marks every phase
(``phase: public models|fit|sampling|metrics``); a metric's line ends with its own seconds.
The time before the first phase is data loading. Prints one row per cell and the totals.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import re
from collections import defaultdict
from pathlib import Path

STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")
PHASE = re.compile(r"phase: (public models|fit|sampling|metrics)")
METRIC = re.compile(r"metric (\w+): .*\(([\d.]+)s\)$")
PHASES = ("data", "public models", "fit", "sampling", "metrics")


def _time(line: str) -> datetime.datetime | None:
    match = STAMP.match(line)
    return datetime.datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f") if match else None


def cell_phases(log: Path) -> tuple[dict[str, float], dict[str, float]]:
    """Seconds per phase and per metric of one cell's log."""
    lines = [line for line in log.read_text().splitlines() if _time(line)]
    marks = [("data", _time(lines[0]))]
    metrics: dict[str, float] = {}
    for line in lines:
        if phase := PHASE.search(line):
            marks.append((phase.group(1), _time(line)))
        if metric := METRIC.search(line):
            metrics[metric.group(1)] = float(metric.group(2))
    marks.append(("end", _time(lines[-1])))
    phases: dict[str, float] = defaultdict(float)
    for (name, start), (_, stop) in itertools.pairwise(marks):
        phases[name] += (stop - start).total_seconds()
    return dict(phases), metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    args = parser.parse_args()
    totals: dict[str, float] = defaultdict(float)
    metric_totals: dict[str, float] = defaultdict(float)
    print("| cell | " + " | ".join(PHASES) + " | total |")
    print("|---" * (len(PHASES) + 2) + "|")
    for log in sorted((args.results / "runs").glob("*/log.txt")):
        phases, metrics = cell_phases(log)
        for name, seconds in phases.items():
            totals[name] += seconds
        for name, seconds in metrics.items():
            metric_totals[name] += seconds
        cells = " | ".join(f"{phases.get(p, 0):.0f}" for p in PHASES)
        print(f"| {log.parent.name} | {cells} | {sum(phases.values()):.0f} |")
    cells = " | ".join(f"{totals.get(p, 0):.0f}" for p in PHASES)
    print(f"| **all cells (s)** | {cells} | {sum(totals.values()):.0f} |")
    print(
        "\nmetrics (s, all cells): " + ", ".join(f"{k} {v:.0f}" for k, v in metric_totals.items())
    )


if __name__ == "__main__":
    main()
