"""The black-box one-run audit: canaries through the guard, coins stored after fit, power,
soundness on the DP mean-image double, and named errors."""

from __future__ import annotations

import json
from pathlib import Path

import audit_plugin  # noqa: F401  (registers test-memorise)
import harness_plugin
import numpy as np
import pytest

from isoeps.bench import cells
from isoeps.bench.audit import (
    AuditError,
    AuditSettings,
    count_correct,
    make_canaries,
    membership_scores,
    run_audit,
)
from isoeps.bench.spec import merge_config, validate
from isoeps.results import folders
from isoeps.testing import tiny_split

PRIVATE = 200  # records of the private split (test-tiny's default is 64)


def _cell(method: str, budget: object, *, seed: int = 0, config: dict | None = None):
    text = harness_plugin.suite_yaml(
        imports=["harness_plugin", "audit_plugin"],
        datasets={"tiny": {"name": "test-tiny", "resolution": 8, "n": {"private": PRIVATE}}},
        methods={"m": {"method": method, "config": config or {}}},
        budgets=[budget],
        seeds=[seed],
        delta=1e-5,
        metrics={},
    )
    spec = validate(merge_config(text, [], origin="test"), origin="test")
    (cell,) = cells.expand(spec)
    return cell, spec.runtime


def test_canaries_are_far_from_the_data_and_from_each_other() -> None:
    private = tiny_split("private", n=32)
    canaries = make_canaries(m=16, resolution=8, like=private)
    assert canaries.images.dtype == np.uint8 and set(np.unique(canaries.images)) <= {0, 255}
    assert len({c[0] for c in canaries.captions}) == 16
    per = private.images[:16, None]
    scores = membership_scores(canaries=canaries.images, per_canary=per)
    assert (-scores > 0.3).all()  # RMS pixel distance on [0, 1]
    self_scores = membership_scores(canaries=canaries.images, per_canary=canaries.images[:, None])
    assert (self_scores == 0).all()


def test_guesses_are_the_top_and_bottom_k() -> None:
    scores = np.array([0.9, 0.1, 0.5, 0.8, 0.2, 0.3])
    coins = np.array([True, False, True, False, False, True])
    correct, guesses = count_correct(scores=scores, coins=coins, k=2)
    assert guesses.tolist() == [1, -1, 0, 1, -1, 0]
    assert correct == 3  # 0 (in), 3 (out: wrong), 1 and 4 (out: right)


def test_memorising_method_is_caught(tmp_path: Path) -> None:
    # m = 200 canaries, k = 50 each side: perfect guesses give about 3.4 at beta = 0.05 and
    # delta = 1e-5, well above the claimed epsilon = 1.
    cell, runtime = _cell("test-memorise", 1)
    outcome = run_audit(cell, tmp_path / "run", runtime, settings=AuditSettings(m=200, k=50))
    assert outcome.correct == 100
    print(f"test-memorise eps=1: eps_lower={outcome.epsilon_lower:.3f}")
    assert outcome.epsilon_lower > outcome.target_epsilon == 1.0
    assert outcome.epsilon_achieved <= 1.0  # the ledger itself looks fine
    record = json.loads((tmp_path / "run" / folders.AUDIT).read_text())
    assert record["epsilon_lower"] == outcome.epsilon_lower
    assert len(record["coins"]) == 200 and 0 < sum(record["coins"]) < 200
    privacy = json.loads((tmp_path / "run" / "privacy.json").read_text())
    assert privacy["num_private"] == PRIVATE + sum(record["coins"])  # one private split


@pytest.mark.parametrize("budget", [1, 10])
@pytest.mark.parametrize("seed", [0, 1])
def test_dp_mean_image_is_sound(tmp_path: Path, budget: int, seed: int) -> None:
    cell, runtime = _cell("test-mean-image", budget, seed=seed, config={"sigma": None})
    outcome = run_audit(cell, tmp_path / "run", runtime, settings=AuditSettings(m=100, k=25))
    assert outcome.epsilon_lower <= budget
    print(f"test-mean-image eps={budget} seed={seed}: eps_lower={outcome.epsilon_lower:.3f}")


def test_coins_come_from_the_cell_seed_and_not_from_the_data(tmp_path: Path) -> None:
    cell, runtime = _cell("test-memorise", 1, seed=3)
    settings = AuditSettings(m=20, k=5)
    run_audit(cell, tmp_path / "a", runtime, settings=settings)
    run_audit(cell, tmp_path / "b", runtime, settings=settings)
    coins = [json.loads((tmp_path / d / folders.AUDIT).read_text())["coins"] for d in "ab"]
    assert coins[0] == coins[1]


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        (AuditSettings(m=10, k=6), "k=6"),
        (AuditSettings(m=10, k=2, beta=1.0), "beta"),
        (AuditSettings(m=10, k=2, beta=0.0), "beta"),
        (AuditSettings(m=0, k=1), "m must be"),
    ],
)
def test_bad_settings_get_a_named_error(tmp_path: Path, settings, match: str) -> None:
    cell, runtime = _cell("test-memorise", 1)
    with pytest.raises(AuditError, match=match):
        run_audit(cell, tmp_path / "run", runtime, settings=settings)


def test_m_larger_than_the_private_split_is_refused(tmp_path: Path) -> None:
    cell, runtime = _cell("test-memorise", 1)
    with pytest.raises(AuditError, match="exceed the 200 records"):
        run_audit(cell, tmp_path / "run", runtime, settings=AuditSettings(m=400, k=10))


def test_a_public_cell_has_nothing_to_audit(tmp_path: Path) -> None:
    cell, runtime = _cell("test-mean-image", "public")
    with pytest.raises(AuditError, match="nothing to audit"):
        run_audit(cell, tmp_path / "run", runtime, settings=AuditSettings(m=10, k=2))
