"""``isoeps compare``: A − B per ε from a fabricated store, its JSON and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from isoeps.cli.main import main
from isoeps.results import folders

#: (method, budget) -> KID at seeds 0, 1, 2: wav beats base clearly at ε=1, not at ε=10.
KID = {
    ("wav", "1"): (0.20, 0.22, 0.21),
    ("base", "1"): (0.40, 0.43, 0.41),
    ("wav", "10"): (0.10, 0.14, 0.08),
    ("base", "10"): (0.11, 0.09, 0.13),
}


def make_cell(
    store: Path,
    *,
    method: str,
    budget: str,
    seed: int,
    kid: float,
    ci: tuple[float, float] | None = None,
) -> Path:
    """A finished run folder with one KID value (and its per-value CI when given)."""
    cell_id = f"{method}{budget}s{seed}"
    folder = folders.run_dir(store, f"d.{method}.eps-{budget}.s{seed}.{cell_id}")
    folders.write_json_atomic(
        folder / folders.CELL,
        {
            "cell_id": cell_id,
            "suite": "s",
            "dataset_label": "faces",
            "dataset": {"name": "synthetic-faces"},
            "method_label": method,
            "method_name": method,
            "method_version": "1",
            "budget": budget,
            "epsilon": None if budget in ("inf", "public") else float(budget),
            "seed": seed,
            "n_samples": 10,
        },
    )
    folders.write_json_atomic(
        folder / folders.PRIVACY, {"delta": 1e-5, "accountant": "prv", "adjacency": "add_remove"}
    )
    value = {"name": "kid", "metric": "kid", "value": kid, "higher_is_better": False, "n": 10}
    if ci is not None:
        value.update(ci_low=ci[0], ci_high=ci[1], details={"ci": {"method": "bootstrap"}})
    folders.write_json_atomic(folder / folders.METRICS, {"values": [value]})
    folders.write_json_atomic(folder / folders.STATUS, {"status": "finished", "wall_time_s": 1})
    return folder


@pytest.fixture
def store(tmp_path: Path) -> Path:
    for (method, budget), values in KID.items():
        for seed, kid in enumerate(values):
            make_cell(tmp_path, method=method, budget=budget, seed=seed, kid=kid)
    return tmp_path


def test_compare_prints_the_difference_ci_p_test_and_n_per_epsilon(store, capsys):
    assert main(["compare", "wav", "base", "--metric", "kid", "--results", str(store)]) == 0
    text = capsys.readouterr().out
    assert "kid (lower is better): wav − base, paired seed by seed" in text
    (at_1,) = [line for line in text.splitlines() if line.startswith("faces") and " 1 " in line]
    assert "-0.2033" in at_1 and "paired t-test: wav better" in at_1 and "  3 " in at_1
    (at_10,) = [line for line in text.splitlines() if line.startswith("faces") and " 10 " in line]
    assert "no ordering shown" in at_10
    assert "ε=10: the 95% CI" in text and "paired seeds (now 3) would resolve" in text
    assert "exact sign-flip permutation p = 0.25" in text


def test_compare_json_and_at_one_epsilon(store, capsys):
    argv = ["compare", "wav", "base", "--metric", "kid", "--results", str(store), "--json"]
    assert main([*argv, "--at", "eps=1.0"]) == 0
    payload = json.loads(capsys.readouterr().out)
    (row,) = payload["rows"]
    assert row["budget"] == "1" and row["n"] == 3 and row["test"] == "paired t-test"
    assert row["low"] < row["diff"] < row["high"] < 0 and row["p_value"] == row["p_holm"] < 0.05
    assert row["verdict"] == "wav better" and row["note"] is None


def test_compare_with_one_seed_uses_the_per_value_cis(tmp_path, capsys):
    make_cell(tmp_path, method="wav", budget="1", seed=0, kid=0.2, ci=(0.18, 0.22))
    make_cell(tmp_path, method="base", budget="1", seed=0, kid=0.4, ci=(0.37, 0.43))
    make_cell(tmp_path, method="wav", budget="10", seed=0, kid=0.2)
    make_cell(tmp_path, method="base", budget="10", seed=0, kid=0.3)
    argv = ["compare", "wav", "base", "--metric", "kid", "--results", str(tmp_path), "--json"]
    assert main(argv) == 0
    at_1, at_10 = json.loads(capsys.readouterr().out)["rows"]
    assert at_1["n"] == 1 and "one seed" in at_1["test"] and at_1["verdict"] == "wav better"
    assert at_10["test"] is None and at_10["verdict"] == "n=1, no CI: no test possible"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["nope", "base", "--metric", "kid"], r"no method 'nope' in the store \(its methods: base"),
        (
            ["wav", "base", "--metric", "fid"],
            r"no metric 'fid' for method 'wav' \(its metrics: kid",
        ),
        (["wav", "base", "--metric", "kid", "--at", "eps=3"], "at ε=3 .*ε both have: 1, 10"),
        (["wav", "base", "--metric", "kid", "--at", "3"], "--at: expected eps=E"),
    ],
)
def test_compare_errors_name_what_is_missing(store, capsys, argv, message):
    import re

    assert main(["compare", *argv, "--results", str(store)]) == 2
    assert re.search(message, capsys.readouterr().err)
