"""Regression gates: tolerances from the spread over seeds, a planted regression fails."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from isoeps.results import load
from isoeps.results.regress import Tolerance, compare, write_baseline

from .test_results_store import make_run


def _store(tmp_path, shift: float = 0.0):
    store = tmp_path / "store"
    for seed, value in enumerate([1.0, 1.1, 0.9, 1.05, 0.95]):
        make_run(store, f"id{seed}", seed=seed, value=value + (shift if seed == 0 else 0))
    return store


def test_baseline_tolerance_from_spread_and_verdicts(tmp_path):
    store = _store(tmp_path)
    baseline = write_baseline(load(store), tmp_path / "b.json")
    (entry,) = baseline["entries"]  # only kid is gated; mem is not
    assert entry["metric"] == "kid" and entry["seed"] == 0 and entry["value"] == 1.0
    assert entry["tolerance"]["value"] == pytest.approx(3 * 0.0790569, rel=1e-4)
    assert [r["verdict"] for r in compare(load(store), baseline)] == ["ok"]
    worse = load(_store(tmp_path / "w", shift=0.5))
    assert [r["verdict"] for r in compare(worse, baseline)] == ["regressed"]
    better = load(_store(tmp_path / "b", shift=-0.5))
    assert [r["verdict"] for r in compare(better, baseline)] == ["improved"]
    loose = {"kid": Tolerance.parse("kid=rel:1.0")[1]}
    assert [r["verdict"] for r in compare(worse, baseline, tolerances=loose)] == ["ok"]


def test_a_value_from_another_metric_or_method_version_is_stale(tmp_path):
    store = _store(tmp_path)
    baseline = write_baseline(load(store), tmp_path / "b.json")
    assert baseline["entries"][0]["metric_version"] == "1"
    assert baseline["entries"][0]["method_version"] == "1"
    for field in ("metric_version", "method_version"):
        moved = json.loads(json.dumps(baseline))
        moved["entries"][0][field] = "0"
        assert [r["verdict"] for r in compare(load(store), moved)] == ["stale"]
    unversioned = json.loads(json.dumps(baseline))
    del unversioned["entries"][0]["metric_version"], unversioned["entries"][0]["method_version"]
    assert [r["verdict"] for r in compare(load(store), unversioned)] == ["ok"]
    indexed_before_versions = load(store).assign(metric_version=None)
    assert [r["verdict"] for r in compare(indexed_before_versions, baseline)] == ["ok"]


def test_baseline_needs_five_seeds_or_explicit_tolerance(tmp_path):
    store = tmp_path / "s"
    make_run(store, "one")
    with pytest.raises(ValueError, match=">= 5"):
        write_baseline(load(store), tmp_path / "b.json")
    baseline = write_baseline(
        load(store), tmp_path / "b.json", tolerances={"kid": Tolerance("abs", 0.2)}
    )
    assert baseline["entries"][0]["tolerance"]["source"] == "given"


def test_tolerance_parse_errors_name_the_flag():
    with pytest.raises(ValueError, match="--tolerance"):
        Tolerance.parse("kid=pct:3")


def test_cli_regress_exit_codes(tmp_path):
    store = _store(tmp_path)
    baseline = tmp_path / "b.json"

    def regress(*args):
        return subprocess.run(
            [sys.executable, "-m", "isoeps.cli.main", "regress", *map(str, args)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    assert regress("--baseline", baseline, "--results", store, "--write-baseline").returncode == 0
    unchanged = regress("--baseline", baseline, "--results", store)
    assert unchanged.returncode == 0, unchanged.stdout + unchanged.stderr
    planted = _store(tmp_path / "p", shift=0.5)
    result = regress("--baseline", baseline, "--results", planted)
    assert result.returncode == 3
    assert "regressed" in result.stdout and "d/m/1/kid" in result.stdout
    as_json = regress("--baseline", baseline, "--results", planted, "--json")
    assert json.loads(as_json.stdout)["regressed"] == 1


def test_a_baseline_with_a_per_value_ci_gates_on_it(tmp_path):
    store = tmp_path / "one"
    make_run(store, "a", value=1.0, ci=(0.9, 1.2))  # one seed: no spread, but a CI
    baseline = write_baseline(load(store), tmp_path / "b.json")
    (entry,) = baseline["entries"]
    assert entry["ci"] == {"low": 0.9, "high": 1.2} and "tolerance" not in entry

    def verdict(value: float, **options) -> tuple[str, str]:
        current = tmp_path / f"c{value}"
        make_run(current, "a", value=value)
        (row,) = compare(load(current), baseline, **options)
        return row["gate"], row["verdict"]

    assert verdict(1.15) == ("ci", "ok")
    assert verdict(1.25) == ("ci", "regressed")  # kid: lower is better
    assert verdict(0.85) == ("ci", "improved")
    assert verdict(1.25, tolerances={"kid": Tolerance("abs", 0.5)}) == ("given", "ok")
    with pytest.raises(ValueError, match="records a CI and no tolerance"):
        verdict(1.0, by="tolerance")


def test_a_baseline_without_cis_falls_back_on_its_tolerances(tmp_path):
    """The committed smoke baseline predates per-value CIs: every entry gates on its tolerance,
    even when the current values carry CIs."""
    from pathlib import Path

    import pandas as pd

    from isoeps.results import COLUMNS
    from isoeps.results.regress import KEY, load_baseline

    baseline = load_baseline(Path(__file__).parents[2] / "benchmarks" / "baselines" / "smoke.json")
    assert baseline["entries"] and not any("ci" in e for e in baseline["entries"])

    def frame(shift: float) -> pd.DataFrame:
        rows = []
        for entry in baseline["entries"]:
            row = dict.fromkeys(COLUMNS)
            row.update({k: entry[k] for k in (*KEY, "seed", "higher_is_better")})
            row.update(metric_version=entry.get("metric_version"))
            row.update(method_version=entry.get("method_version"))
            value = entry["value"] + (-shift if entry["higher_is_better"] else shift)
            row.update(value=value, ci_low=value - 1e-9, ci_high=value + 1e-9)
            rows.append(row)
        return pd.DataFrame(rows, columns=list(COLUMNS))

    same = compare(frame(0.0), baseline)
    assert {r["gate"] for r in same} == {"tolerance"} and {r["verdict"] for r in same} == {"ok"}
    worse = compare(frame(10.0), baseline)
    assert {r["verdict"] for r in worse} == {"regressed"}
    assert compare(frame(0.0), baseline, by="tolerance") == same
