"""How long must the attribute metrics' eval classifier train before it reads every attribute?

    .venv/bin/python benchmarks/bench_attr_classifier.py [--eval 2000] [--steps 300 1000 1500]

Trains the eval classifier (``isoeps.metrics.classifier``) on the quick suite's synthetic-faces
eval split for each step count and prints, per attribute, its accuracy on the 1,000 reference
faces beside the majority-class rate (the accuracy of a constant guess), with the wall time of
each training. One JSON line per step count.
"""

from __future__ import annotations

import argparse
import json
import time


def main() -> None:
    from isoeps.datasets.api import load_splits
    from isoeps.metrics.classifier import (
        ClassifierConfig,
        accuracies,
        check_labels,
        majority_rates,
        predict,
        train_classifier,
    )

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval", type=int, default=2000, help="eval faces to train on")
    parser.add_argument("--steps", type=int, nargs="+", default=[300, 1000, 1500])
    args = parser.parse_args()
    splits = load_splits(
        "synthetic-faces",
        ["reference", "eval"],
        resolution=32,
        n={"reference": 1000, "eval": args.eval},
        options={"shift": "both"},
    )
    train, test = splits["eval"], splits["reference"]
    labels = check_labels(train.attributes, n=len(train), what="eval")
    classes = {name: len(train.attribute_schema[name]) for name in labels}
    majority = majority_rates(test.attributes)
    for steps in args.steps:
        config = ClassifierConfig(steps=steps)
        start = time.perf_counter()
        model = train_classifier(train.images, labels, classes=classes, config=config)
        seconds = time.perf_counter() - start
        held_out = accuracies(predict(model, test.images, config=config), test.attributes)
        print(
            json.dumps(
                {
                    "eval_images": args.eval,
                    "steps": steps,
                    "train_seconds": round(seconds, 1),
                    "heldout_accuracy": {k: round(v, 3) for k, v in held_out.items()},
                    "majority_rate": {k: round(majority[k], 3) for k in held_out},
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
