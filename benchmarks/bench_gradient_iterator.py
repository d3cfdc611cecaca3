"""A DP-SGD run of the AR model: the gradient iterator's default loop against the old loop.

``new``: :func:`isoeps.privacy.engine.train_dp_sgd` of this checkout, a thin loop over
:class:`isoeps.privacy.engine.PrivateGradients`. ``old``: ``train_dp_sgd`` as it was at
``--old-rev`` (one function that sampled, clipped, noised and stepped), loaded from git into a
module of its own. Both train the same AR model (the quick suite's size) on the same private
tokens with the ``bk`` backend, the same calibrated sigma and the same seed; each round times
one run of ``--steps`` steps of each, interleaved, and the figure is best-of-``--repeats``
new / old.

Usage: ``OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_gradient_iterator.py
[--old-rev edd74a9] [--steps 10] [--repeats 5]``
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

from isoeps.accountants import PrivacyBudget
from isoeps.models.ar_transformer import ARConfig, ScaleCausalTransformer, per_example_loss
from isoeps.privacy import engine as new_engine
from isoeps.privacy.config import DPSGDConfig
from isoeps.privacy.guard import PrivateData

RECORDS = 2000
TOKENS_PER_SCALE = 16
SCALES = 2
TEXT_DIM = 384


def old_engine(rev: str) -> ModuleType:
    """``isoeps/privacy/engine.py`` at ``rev``, imported as a module of its own."""
    source = subprocess.run(
        ["git", "show", f"{rev}:isoeps/privacy/engine.py"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # the per-record generators have moved out of privacy.rng since; nothing else differs
    source = source.replace(
        "from isoeps.privacy.rng import record_generators",
        "from isoeps.privacy.record_streams import record_generators",
    )
    path = Path(tempfile.mkdtemp()) / "old_engine.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("old_engine", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["old_engine"] = module
    spec.loader.exec_module(module)
    return module


class TokenRecords:
    """Private token sequences with ``take``, as the AR family's collate sees them."""

    def __init__(self, tokens: np.ndarray) -> None:
        self.tokens = tokens

    def __len__(self) -> int:
        return len(self.tokens)

    def take(self, indices: np.ndarray) -> TokenRecords:
        return TokenRecords(self.tokens[indices])


def collate(records: TokenRecords, rngs: list[np.random.Generator]) -> dict[str, torch.Tensor]:
    n = len(records)
    text = torch.from_numpy(np.stack([r.standard_normal((1, TEXT_DIM)) for r in rngs]))
    return {
        "tokens": torch.from_numpy(records.tokens).long(),
        "text": text.float().reshape(n, 1, TEXT_DIM),
        "text_mask": torch.ones(n, 1, dtype=torch.bool),
    }


def plan_once(engine: ModuleType) -> None:
    """Calibrate sigma once per engine: the timed runs then measure the steps, not PRV."""
    calibrated = engine.plan_dp_sgd
    plans: dict[tuple, object] = {}

    def plan(**kwargs):
        key = (kwargs["config"].steps, len(kwargs.get("prefix") or ()))
        if key not in plans:
            plans[key] = calibrated(**kwargs)
        return plans[key]

    engine.plan_dp_sgd = plan


def one_run(
    engine: ModuleType, model: ScaleCausalTransformer, records: TokenRecords, steps: int
) -> float:
    config_class = getattr(engine, "DPSGDConfig", DPSGDConfig)
    config = config_class(expected_batch_size=64, steps=steps, backend="bk")
    guard = PrivateData(records, seed=0)
    trainable = model.scale_parameter_names(range(SCALES))
    started = time.perf_counter()
    engine.train_dp_sgd(
        guard=guard,
        module=model,
        loss_fn=per_example_loss,
        collate=collate,
        config=config,
        budget=PrivacyBudget.private(10.0, 1e-5),
        trainable=trainable,
        show_progress=False,
        accountants=["prv"],
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old-rev", default="edd74a9")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    torch.manual_seed(0)
    base = ScaleCausalTransformer(
        ARConfig(vocab_sizes=(512,) * 3, tokens_per_scale=TOKENS_PER_SCALE, text_dim=TEXT_DIM)
    ).eval()
    tokens = np.random.default_rng(0).integers(0, 512, (RECORDS, SCALES * TOKENS_PER_SCALE))
    records = TokenRecords(tokens)
    engines = {"old": old_engine(args.old_rev), "new": new_engine}
    for engine in engines.values():
        plan_once(engine)
    models = {name: copy.deepcopy(base) for name in engines}
    for name, engine in engines.items():  # warm-up (and the calibration's first call)
        one_run(engine, copy.deepcopy(base), records, 1)
    best = {name: float("inf") for name in engines}
    for _ in range(args.repeats):
        for name, engine in engines.items():
            best[name] = min(best[name], one_run(engine, models[name], records, args.steps))
    old, new = models["old"].state_dict(), models["new"].state_dict()
    assert all(torch.equal(old[k], new[k]) for k in old), "the two loops trained differently"
    print(
        f"{args.steps} DP steps at expected batch 64, bk backend, best of {args.repeats}: "
        f"old {best['old']:.2f} s, new {best['new']:.2f} s, new/old {best['new'] / best['old']:.3f}"
        " (bit-identical trained weights)"
    )


if __name__ == "__main__":
    main()
