"""The runner: run folders, resume, failure isolation, refusal, runtime-only changes."""

from __future__ import annotations

import json
from pathlib import Path

import harness_plugin  # noqa: F401  (registers the test doubles)
import numpy as np

from isoeps.bench import cells
from isoeps.bench.runner import run_suite
from isoeps.bench.spec import load_suite
from isoeps.results import folders, load, load_cells, reindex
from isoeps.results.index import read

RUN_FILES = {
    "cell.json",
    "config.yaml",
    "overrides.txt",
    "environment.json",
    "ledger.json",
    "privacy.json",
    "fit.json",
    "metrics.json",
    "samples.npz",
    "grid.png",
    "log.txt",
    "status.json",
    folders.MARKER,
}


def _run(path, overrides=(), **kwargs):
    spec = load_suite(path, list(overrides))
    expanded = cells.expand(spec)
    summary = run_suite(expanded, store=Path(spec.runtime.results), runtime=spec.runtime, **kwargs)
    return spec, expanded, summary


def _mtimes(store: Path) -> dict[str, float]:
    return {f.name: (f / "status.json").stat().st_mtime_ns for f in folders.iter_run_dirs(store)}


def test_cells_write_complete_run_folders_and_resume(tiny_suite):
    path = tiny_suite(budgets=[1, "inf", "public"])
    spec, expanded, summary = _run(path)
    store = Path(spec.runtime.results)
    assert [o.status for o in summary.ran] == ["finished"] * 3 and not summary.failed
    private = folders.find_run(store, expanded[0].cell_id)
    assert {p.name for p in private.iterdir()} == RUN_FILES
    privacy = json.loads((private / "privacy.json").read_text())
    assert privacy["accountant"] == "prv" and privacy["epsilon_achieved"] <= 1.0
    assert set(privacy["epsilon_by_accountant"]) == {"prv", "pld"}
    assert privacy["release"] == "benchmark run, not a DP release"
    samples = np.load(private / "samples.npz")
    assert samples["images"].dtype == np.uint8 and samples["images"].shape == (8, 3, 8, 8)
    assert len(samples["prompts"]) == len(samples["eval_captions"]) == 8
    fit = json.loads((private / "fit.json").read_text())
    assert fit["reported"] and fit["steps"] == 1 and fit["noise_multiplier"] == 4.0
    # the public row never touched the private data: no guard, no ledger
    public = folders.find_run(store, expanded[2].cell_id)
    assert not (public / "ledger.json").exists()
    assert json.loads((public / "fit.json").read_text()) == {"mode": "public", "reported": False}
    # same prompts for every budget of a seed (sample grids line up)
    other = np.load(public / "samples.npz")
    assert list(other["prompts"]) == list(samples["prompts"])

    # each cell's log says where it stands in the run and which phase it is in
    log_text = (private / "log.txt").read_text()
    assert f"cell 1/3 {expanded[0].cell_id}" in log_text
    phases = ["public models", "fit (budget 1)", "sampling (8 images)", "metrics ("]
    positions = [log_text.index(f"phase: {phase}") for phase in phases]
    assert positions == sorted(positions)

    frame = load(store)
    assert len(frame) == 3 and frame["higher_is_better"].eq(False).all()
    indexed = read(store / folders.INDEX, table="cells").set_index("budget")
    assert indexed.loc["1", "noise_multiplier"] == 4.0 and indexed.loc["1", "fit_steps"] == 1
    assert set(frame["budget"]) == {"1", "inf", "public"}
    before = _mtimes(store)
    _, _, again = _run(path)
    assert not again.ran and again.skipped == 3
    assert _mtimes(store) == before


def test_runtime_only_changes_recompute_nothing(tiny_suite):
    path = tiny_suite(budgets=["inf", "public"], seeds=[0, 1])
    spec, _, _ = _run(path)
    store = Path(spec.runtime.results)
    before = _mtimes(store)
    _, _, again = _run(path, ["runtime.device=cuda", "runtime.jobs=2"])
    assert not again.ran and again.skipped == 4
    assert _mtimes(store) == before


def test_jobs_run_cells_in_worker_processes(tiny_suite):
    path = tiny_suite(budgets=["inf", "public"])
    spec, expanded, summary = _run(path, ["runtime.jobs=2"])
    assert sorted(o.status for o in summary.ran) == ["finished", "finished"]
    indexed = read(Path(spec.runtime.results))
    assert sorted(indexed["cell_id"]) == sorted(c.cell_id for c in expanded)


def test_failing_cell_is_recorded_and_the_rest_continue(tiny_suite):
    path = tiny_suite(
        budgets=["inf", "public"],
        methods={
            "bad": {"method": "test-mean-image", "config": {"fail": True}},
            "good": {"method": "test-mean-image"},
        },
    )
    spec, expanded, summary = _run(path)
    store = Path(spec.runtime.results)
    # public rows never call fit's failing branch... the double raises before any mode check
    statuses = {row.cell_id: row.status for row in load_cells(store).itertuples()}
    bad = [c.cell_id for c in expanded if c.method_label == "bad"]
    good = [c.cell_id for c in expanded if c.method_label == "good"]
    assert all(statuses[i] == "failed" for i in bad)
    assert all(statuses[i] == "finished" for i in good)
    assert summary.failed_count == len(bad) == 2
    status = folders.status_of(folders.find_run(store, bad[0]))
    assert "planted failure" in status["reason"] and "Traceback" in status["traceback"]
    # failed cells are not retried unless asked
    _, _, again = _run(path)
    assert not again.ran and again.failed_count == 2
    _, _, retry = _run(path, rerun_failed=True)
    assert len(retry.ran) == 2


def test_cell_over_budget_is_refused_and_not_stored(tiny_suite):
    path = tiny_suite(
        budgets=[1],
        methods={"greedy": {"method": "test-mean-image", "config": {"overspend": True}}},
        cross_check_accountants=[],
    )
    spec, expanded, summary = _run(path)
    store = Path(spec.runtime.results)
    folder = folders.find_run(store, expanded[0].cell_id)
    status = folders.status_of(folder)
    assert status["status"] == "refused" and "exceeds the target 1" in status["reason"]
    assert not (folder / "metrics.json").exists() and not (folder / "samples.npz").exists()
    assert summary.failed_count == 1
    assert load(store).empty


def test_reindex_matches_folders(tiny_suite):
    path = tiny_suite(budgets=["inf", "public"])
    spec, _, _ = _run(path)
    store = Path(spec.runtime.results)
    (store / "index.sqlite").unlink()
    assert reindex(store) == 2
    indexed = read(store).sort_values("cell_id").reset_index(drop=True)
    direct = load(store).sort_values("cell_id").reset_index(drop=True)
    assert list(indexed["value"]) == list(direct["value"])
    assert list(indexed["cell_id"]) == list(direct["cell_id"])


def test_tensorboard_tracker_gets_harness_events_only(tiny_suite):
    path = tiny_suite(budgets=["public"])
    spec, _, _ = _run(path, ["runtime.trackers=[tensorboard]"])
    store = Path(spec.runtime.results)
    events = list((store / "tensorboard").rglob("events.out.tfevents.*"))
    assert len(events) == 1
    from isoeps.bench.trackers import cell_event

    (folder,) = folders.iter_run_dirs(store)
    event = cell_event(folder)
    assert set(event["scalars"]) == {"metrics/brightness", "privacy/epsilon_achieved"}


def test_private_reads_are_marked_and_pairs_shown_only_on_request(tiny_suite, tmp_path):
    from isoeps.reports import write_report

    path = tiny_suite(budgets=["public"], metrics={"test-brightness": {}, "test-nearest": {}})
    spec, _, _ = _run(path)
    store = Path(spec.runtime.results)
    frame = load(store)
    assert frame.set_index("metric")["not_dp"].to_dict() == {
        "brightness": False,
        "nearest_private": True,
    }
    hidden = write_report(frame, tmp_path / "r1", title="t", store=store)
    assert "--show-private" in hidden.read_text()
    assert not list((tmp_path / "r1" / "figures").glob("memorisation_*"))
    shown = write_report(frame, tmp_path / "r2", title="t", store=store, show_private=True)
    assert "memorisation_tiny_mean_public.png" in shown.read_text()


def test_a_dead_worker_fails_only_its_cell(tiny_suite):
    class Dying:
        def map(self, fn, payloads):
            for k, payload in enumerate(payloads):
                yield payload, (RuntimeError("killed") if k == 0 else fn(payload))

    path = tiny_suite(budgets=["inf", "public"])
    _, _, summary = _run(path, executor=Dying())
    assert [o.status for o in summary.ran] == ["failed", "finished"]
    assert "worker died" in summary.failed[0]["reason"]


def test_unknown_executor_names_the_field(tiny_suite):
    import pytest

    from isoeps.errors import ConfigError

    with pytest.raises(ConfigError, match="runtime.executor"):
        _run(tiny_suite(budgets=["public"]), ["runtime.executor=nowhere"])


def test_cells_interleave_by_method_so_parallel_workers_start_apart():
    from types import SimpleNamespace

    from isoeps.bench.runner import interleave_families

    cells = [
        SimpleNamespace(dataset_label="d", method_label=m, budget=b)
        for m in ("a", "b", "c")
        for b in ("1", "10", "public")
    ][:-1]
    ordered = interleave_families(cells, family=lambda c: c.method_label)
    assert [(c.method_label, c.budget) for c in ordered] == [
        ("a", "1"),
        ("b", "1"),
        ("c", "1"),
        ("a", "10"),
        ("b", "10"),
        ("c", "10"),
        ("a", "public"),
        ("b", "public"),
    ]


def test_the_two_ar_methods_share_one_public_family():
    from isoeps.bench.runner import interleave_families, public_family

    quick = cells.expand(load_suite("quick"), check_roots=False)
    families = {public_family(c) for c in quick}
    # The AR family (both AR methods), then dpagg-ti, private-evolution and dp-ldm each alone.
    assert len(families) == 4
    first = interleave_families(quick)[:4]
    assert {c.method_name for c in first} == {
        "wavelet-two-stage",
        "dpagg-ti",
        "private-evolution",
        "dp-ldm",
    }


def test_the_progress_line_counts_statuses_and_estimates_what_is_left():
    from isoeps.bench.runner import CellOutcome, progress_line

    done = [CellOutcome("a", "finished", "x", None, 1.0), CellOutcome("b", "failed", "y", "e", 1.0)]
    line = progress_line(done, total=6, elapsed=20 * 60)
    assert line == "cells 2/6 done (1 failed, 1 finished), 20 min elapsed, about 40 min left"
    assert progress_line(done, total=2, elapsed=30) == (
        "cells 2/2 done (1 failed, 1 finished), 30 s elapsed"
    )
    assert "1 h 30 min left" in progress_line(done[:1], total=4, elapsed=30 * 60)
