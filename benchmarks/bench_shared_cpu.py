"""One AR pretraining step on a shared CPU: OpenMP threads that spin vs threads that sleep.

    .venv/bin/python benchmarks/bench_shared_cpu.py [--repeats 5] [--steps 10]

Each case runs the quick suite's AR training step (batch 64; as bench_threads.py) in a fresh
process at torch's default thread count, with OpenMP's default wait policy (spinning) or with
``isoeps.cpus.quiet_openmp`` (``OMP_WAIT_POLICY=PASSIVE``, ``KMP_BLOCKTIME=0``, as the CLI
sets), alone and beside one competing CPU-bound process (``while True: pass``). It prints the
best seconds per step of ``--repeats`` and the same-run ratios: competing / alone per policy.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from isoeps.cpus import QUIET_OPENMP

WORKER = """
import sys, time, torch
sys.path.insert(0, {bench!r})
from bench_threads import _ar_step
step = _ar_step()
step()
times = []
for _ in range({repeats}):
    start = time.perf_counter()
    for _ in range({steps}):
        step()
    times.append((time.perf_counter() - start) / {steps})
print(min(times), torch.get_num_threads())
"""


def _time(*, quiet: bool, competing: bool, repeats: int, steps: int) -> tuple[float, int]:
    env = {k: v for k, v in os.environ.items() if k not in (*QUIET_OPENMP, "OMP_NUM_THREADS")}
    if quiet:
        env.update(QUIET_OPENMP)
    code = WORKER.format(bench=os.path.dirname(__file__), repeats=repeats, steps=steps)
    spinner = None
    if competing:
        spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        ).stdout.split()
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()
    return float(out[0]), int(out[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    rows = {}
    for quiet in (False, True):
        for competing in (False, True):
            seconds, threads = _time(
                quiet=quiet, competing=competing, repeats=args.repeats, steps=args.steps
            )
            rows[(quiet, competing)] = seconds
            print(
                json.dumps(
                    {
                        "openmp": "passive (isoeps)" if quiet else "default",
                        "competing_process": competing,
                        "threads": threads,
                        "seconds_per_step": round(seconds, 4),
                    }
                ),
                flush=True,
            )
    for quiet in (False, True):
        ratio = rows[(quiet, True)] / rows[(quiet, False)]
        name = "passive (isoeps)" if quiet else "default"
        print(json.dumps({"openmp": name, "competing_over_alone": round(ratio, 2)}), flush=True)


if __name__ == "__main__":
    main()
