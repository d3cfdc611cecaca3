"""DPImageBench's utility on REAL Fashion-MNIST images at CPU sizings: the evaluator's ceiling.

A CPU-sized utility (few samples, few epochs) is only informative if a classifier trained on
real images of that count scores well above chance (0.1). This trains DPImageBench's ResNet on
``--n`` real train images (an evaluation-only read of the sensitive split: a measurement of
the evaluator, no DP claim) at each ``--setting`` (epochs x batch size) and prints the noisy-
and noiseless-selected test accuracy and the wall time.

    OMP_NUM_THREADS=1 python benchmarks/bench_utility_sizing.py --n 500 \
        --setting 3x256 --setting 10x32
"""

from __future__ import annotations

import argparse
import json
import time

from isoeps.datasets.api import load_splits
from isoeps.metrics.base import MetricInputs
from isoeps.metrics.dpimagebench.utility import DPImageBenchUtilityMetric


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="real train images to train on")
    parser.add_argument("--validation", type=int, default=1000)
    parser.add_argument("--test", type=int, default=2000)
    parser.add_argument("--setting", action="append", default=[], help="EPOCHSxBATCH")
    parser.add_argument("--epsilon", type=float, default=10.0)
    args = parser.parse_args()
    splits = load_splits(
        "fashion-mnist",
        ["private", "validation", "reference"],
        n={"private": args.n, "validation": args.validation, "reference": args.test},
    )
    train = splits["private"]
    inputs = MetricInputs(
        fake=train.images,
        fake_captions=list(train.captions),
        fake_attributes={"label": train.attributes["label"]},
        reference=splits["reference"],
        validation=splits["validation"],
        epsilon=args.epsilon,
    )
    for setting in args.setting or ["3x256"]:
        epochs, batch = (int(v) for v in setting.split("x"))
        metric = DPImageBenchUtilityMetric(classifiers=["resnet"], epochs=epochs, batch_size=batch)
        start = time.perf_counter()
        (value, *_) = metric.evaluate(inputs)
        row = {
            "n": args.n,
            "epochs": epochs,
            "batch_size": batch,
            "accuracy_noisy_selection": value.value,
            "accuracy_noiseless_selection": value.details.get("noiseless_val_selected_accuracy"),
            "wall_s": round(time.perf_counter() - start, 1),
        }
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
