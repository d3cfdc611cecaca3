"""End-to-end through the ``isoeps`` command line, in subprocesses, with the test doubles
loaded through a suite's ``imports:`` (an out-of-tree plugin)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from isoeps.results import folders, load
from isoeps.results.index import read


def isoeps(args, env, cwd, check=None):
    result = subprocess.run(
        [sys.executable, "-m", "isoeps.cli.main", *map(str, args)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if check is not None:
        assert result.returncode == check, result.stdout + result.stderr
    return result


def _finished(store: Path) -> dict[str, int]:
    out = {}
    for folder in folders.iter_run_dirs(store):
        status = folders.status_of(folder)
        if status and status["status"] == "finished":
            out[folder.name] = (folder / "status.json").stat().st_mtime_ns
    return out


def test_resume_after_kill_9(tiny_suite, plugin_env, tmp_path):
    path = tiny_suite(
        budgets=["inf", "public"],
        seeds=[0, 1, 2],
        methods={"mean": {"method": "test-mean-image", "config": {"sleep_s": 1.0}}},
    )
    store = tmp_path / "results"
    process = subprocess.Popen(
        [sys.executable, "-m", "isoeps.cli.main", "run", str(path), "--no-report", "-q"],
        env=plugin_env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 240
        while len(_finished(store)) < 2 and time.time() < deadline and process.poll() is None:
            time.sleep(0.1)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    before = _finished(store)
    assert 2 <= len(before) < 6, "the kill landed after the suite ended; slow it down"
    isoeps(["run", path, "--no-report", "-q"], plugin_env, tmp_path, check=0)
    after = _finished(store)
    assert len(after) == 6
    assert all(after[name] == mtime for name, mtime in before.items()), "a finished cell re-ran"
    frame = load(store)
    assert len(frame) == 6 and frame["cell_id"].is_unique
    assert len(read(store)) == 6
    assert not list(store.rglob("*.tmp")), "a temporary file was left behind"


def test_failing_cell_exit_1_with_count(tiny_suite, plugin_env, tmp_path):
    path = tiny_suite(
        budgets=["public"],
        methods={
            "bad": {"method": "test-mean-image", "config": {"fail": True}},
            "good": {"method": "test-mean-image"},
        },
    )
    result = isoeps(["run", path, "--no-report"], plugin_env, tmp_path, check=1)
    assert "1 cell(s) failed" in result.stderr and "planted failure" in result.stderr
    assert len(load(tmp_path / "results")) == 1


def test_config_error_exit_2_names_field(tiny_suite, plugin_env, tmp_path):
    path = tiny_suite(budgets=[0])
    result = isoeps(["run", path], plugin_env, tmp_path, check=2)
    assert "budgets" in result.stderr and "Traceback" not in result.stderr


def test_cell_from_suite_id_and_run_from_config(tiny_suite, plugin_env, tmp_path):
    path = tiny_suite(budgets=["inf", "public"])
    shown = isoeps(["config", "show", path, "--cells", "--json"], plugin_env, tmp_path, check=0)
    cells = json.loads(shown.stdout)["cells"]
    assert len(cells) == 2
    target = cells[1]["cell_id"]
    result = isoeps(
        ["cell", "--suite", path, "--id", target[:8], "--json"], plugin_env, tmp_path, check=0
    )
    summary = json.loads(result.stdout)
    assert summary["status"] == "finished" and summary["cell_id"] == target
    folder = folders.find_run(tmp_path / "results", target)
    # `run --from RUN/config.yaml` is the same experiment: nothing to recompute
    again = isoeps(
        ["run", "--from", folder / "config.yaml", "--no-report", "--json"],
        plugin_env,
        tmp_path,
        check=0,
    )
    assert json.loads(again.stdout)["ran"] == 0


def test_adhoc_cell_prints_every_accountant(plugin_env, tmp_path):
    out = tmp_path / "one"
    result = isoeps(
        [
            "cell",
            "--method",
            "test-mean-image",
            "--dataset",
            "test-tiny",
            "--resolution",
            "8",
            "--epsilon",
            "1",
            "--n-samples",
            "4",
            "--import",
            "harness_plugin",
            "--metrics",
            "test-brightness",
            "--out",
            out,
            "--json",
        ],
        plugin_env,
        tmp_path,
        check=0,
    )
    summary = json.loads(result.stdout)
    assert summary["target_epsilon"] == 1.0 and 0 < summary["delta"] < 1
    assert set(summary["epsilon_by_accountant"]) == {"prv", "pld", "rdp"}
    assert summary["epsilon_achieved"] <= 1.0
    for name in (
        "config.yaml",
        "overrides.txt",
        "environment.json",
        "ledger.json",
        "metrics.json",
        "samples.npz",
        "grid.png",
        "log.txt",
    ):
        assert (out / name).is_file(), name


def test_dry_run_prints_plan_and_status(tiny_suite, plugin_env, tmp_path):
    path = tiny_suite(budgets=[1, "public"])
    result = isoeps(["run", path, "--dry-run", "--json"], plugin_env, tmp_path, check=0)
    rows = json.loads(result.stdout)["cells"]
    assert [r["status"] for r in rows] == ["new", "new"]
    assert rows[0]["plan"] == {"sample_rate": 0.5, "steps": 1}
    assert not (tmp_path / "results" / "runs").exists()


def test_dry_run_estimates_come_from_the_same_suite_only(tiny_suite, plugin_env, tmp_path):
    path = tiny_suite(budgets=["public"])
    isoeps(["run", path, "--no-report"], plugin_env, tmp_path, check=0)
    same = json.loads(
        isoeps(["run", path, "--dry-run", "--json"], plugin_env, tmp_path, check=0).stdout
    )["cells"]
    other = json.loads(
        isoeps(
            ["run", path, "name=other", "--dry-run", "--json"], plugin_env, tmp_path, check=0
        ).stdout
    )["cells"]
    assert same[0]["estimate_s"] is not None and same[0]["estimate_s"] >= 0
    assert other[0]["cell_id"] == same[0]["cell_id"] and other[0]["estimate_s"] is None


def test_open_prompt_samples_are_drawn_stored_and_shown(tiny_suite, plugin_env, tmp_path):
    # public: the report's sample figures leave out `inf` rows unless asked (issue 13)
    path = tiny_suite(
        budgets=["public"],
        open_prompt_samples=5,
        metrics={"test-brightness": {}, "test-open-brightness": {}},
    )
    isoeps(["run", path, "--reports", tmp_path / "rep"], plugin_env, tmp_path, check=0)
    folder = next((tmp_path / "results" / "runs").iterdir())
    values = {v["name"]: v for v in json.loads((folder / "metrics.json").read_text())["values"]}
    stored = np.load(folder / "open_prompt_samples.npz")
    assert stored["images"].shape[0] == values["open_brightness"]["n"] == 5
    assert values["open_brightness"]["value"] == pytest.approx(stored["images"].mean())
    assert list(stored["prompts"]) == [""] * 5
    index = (tmp_path / "rep" / "index.md").read_text()
    assert "figures/samples_open_prompt_tiny.png" in index


def test_run_writes_report_and_exports(tiny_suite, plugin_env, tmp_path):
    path = tiny_suite(budgets=["inf", "public"])
    isoeps(["run", path, "--reports", tmp_path / "rep"], plugin_env, tmp_path, check=0)
    index = (tmp_path / "rep" / "index.md").read_text()
    assert "Benchmark run, not a DP release" in index and "figures/samples_tiny.png" in index
    assert (tmp_path / "rep" / "figures" / "metrics_vs_eps_tiny.pdf").is_file()
    isoeps(
        ["results", "export", "--format", "csv", "--out", tmp_path / "all.csv"],
        plugin_env,
        tmp_path,
        check=0,
    )
    assert len(load(tmp_path / "all.csv")) == 2
    result = isoeps(
        ["results", "export", "--format", "dpimagebench", "--out", tmp_path / "dpib", "--json"],
        plugin_env,
        tmp_path,
        check=0,
    )
    files = json.loads(result.stdout)["files"]
    assert len(files) == 2
    from isoeps.datasets import read_dpimagebench_npz

    images, _, captions = read_dpimagebench_npz(files[0])
    assert images.shape == (8, 3, 8, 8) and len(captions) == 8


def test_methods_list_shows_config_and_modes(plugin_env, tmp_path):
    result = isoeps(
        ["methods", "list", "--import", "harness_plugin", "--json"], plugin_env, tmp_path, check=0
    )
    methods = {m["name"]: m for m in json.loads(result.stdout)["methods"]}
    double = methods["test-mean-image"]
    assert double["modes"] == ["private", "inf", "public"]
    assert {
        "name": "sigma",
        "type": "float | None",
        "default": 4.0,
        "description": "",
        "part": "private",
    } in double["config"]


def test_prepare_trains_public_models_once_before_the_run(tiny_suite, plugin_env, tmp_path):
    env = {**plugin_env, "ISOEPS_CACHE_DIR": str(tmp_path / "cache")}
    path = tiny_suite(budgets=["inf", "public"], seeds=[0, 1])
    prepared = isoeps(["prepare", path, "--json"], env, tmp_path, check=0)
    (row,) = json.loads(prepared.stdout)["public_models"]
    assert (tmp_path / "cache" / "public-models" / row["key"] / "DONE").is_file()
    isoeps(["run", path, "--no-report", "--jobs", "2"], env, tmp_path, check=0)
    logs = [p.read_text() for p in (tmp_path / "results" / "runs").glob("*/log.txt")]
    assert len(logs) == 4 and not any("pretraining" in log for log in logs)


def test_parallel_cells_train_a_public_model_once(tiny_suite, plugin_env, tmp_path):
    env = {**plugin_env, "ISOEPS_CACHE_DIR": str(tmp_path / "cache")}
    path = tiny_suite(budgets=["inf", "public"], seeds=[0, 1])
    isoeps(["run", path, "--no-report", "--jobs", "2"], env, tmp_path, check=0)
    logs = [p.read_text() for p in (tmp_path / "results" / "runs").glob("*/log.txt")]
    assert len(logs) == 4 and sum("pretraining" in log for log in logs) == 1
