"""Soundness of the black-box audit on the built-in methods at tiny settings: epsilon_lower
stays at or below the target (at beta = 0.05 a violation is a bug in the method or audit)."""

from __future__ import annotations

from pathlib import Path

import harness_plugin
import pytest

from isoeps.bench import cells
from isoeps.bench.audit import AuditSettings, run_audit
from isoeps.bench.spec import merge_config, validate

_AR = {
    "codebook_size": 32, "kmeans_iters": 3, "tokenizer_images": 100, "dim": 32, "depth": 1,
    "heads": 2, "mlp_ratio": 2, "pretrain_steps": 10, "pretrain_batch_size": 16,
    "sr_width": 16, "sr_blocks": 1, "sr_steps": 3, "sr_batch_size": 8, "sample_batch_size": 8,
    "dp_sgd": {"steps": 2, "expected_batch_size": 20, "max_physical_batch_size": 16},
}  # fmt: skip
_AGG = {
    "resolution": 8, "unet_channels": (16, 32), "pretrain_steps": 2, "pretrain_batch_size": 4,
    "expected_records": 3, "ti_steps": 2, "sampler_steps": 2,
}  # fmt: skip
#: Seconds-scale sizes (as the methods' own tests): the audit's plumbing, not sample quality.
METHODS = {"wavelet-two-stage": (_AR, 16), "dpsgd-full-finetune": (_AR, 16), "dpagg-ti": (_AGG, 8)}


@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("budget", [1, 10])
@pytest.mark.parametrize("seed", [0, 1])
def test_builtin_methods_are_sound(tmp_path: Path, method: str, budget: int, seed: int) -> None:
    config, resolution = METHODS[method]
    text = harness_plugin.suite_yaml(
        datasets={"tiny": {"name": "test-tiny", "resolution": resolution}},
        methods={"m": {"method": method, "config": config}},
        budgets=[budget],
        seeds=[seed],
        delta=1e-5,
        metrics={},
    )
    spec = validate(merge_config(text, [], origin="test"), origin="test")
    (cell,) = cells.expand(spec)
    outcome = run_audit(cell, tmp_path / "run", spec.runtime, settings=AuditSettings(m=40, k=10))
    print(f"{method} eps={budget} seed={seed}: eps_lower={outcome.epsilon_lower:.3f}")
    assert outcome.epsilon_lower <= budget
