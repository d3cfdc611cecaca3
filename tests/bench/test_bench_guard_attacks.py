"""The guard as a boundary, end to end: a plugin method that tries a door ends in a refused or
failed cell, never in a finished private one; metrics see the private split only when they
declare it; public data from another source is checked against the private split."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import harness_plugin
import pytest

from isoeps.accountants import Ledger
from isoeps.bench import cells
from isoeps.bench.runner import run_suite
from isoeps.bench.spec import load_suite
from isoeps.results import folders


def _run(path):
    spec = load_suite(path, [])
    expanded = cells.expand(spec)
    run_suite(expanded, store=Path(spec.runtime.results), runtime=spec.runtime)
    return spec, expanded


@pytest.mark.parametrize("attack", harness_plugin.MeanImage.ATTACKS)
def test_every_guard_attack_ends_refused_or_failed(tiny_suite, attack):
    path = tiny_suite(
        budgets=[1],
        cross_check_accountants=[],
        methods={"mean": {"method": "test-mean-image", "config": {"attack": attack}}},
    )
    spec, expanded = _run(path)
    folder = folders.find_run(Path(spec.runtime.results), expanded[0].cell_id)
    status = folders.status_of(folder)
    if status["status"] == folders.FINISHED:  # no door found: the release is on the record
        ledger = Ledger.from_json((folder / folders.LEDGER).read_text())
        assert len(ledger) == 1 and ledger.is_private, (attack, ledger)
        return
    assert status["status"] in (folders.REFUSED, folders.FAILED), (attack, status)


def test_late_access_that_the_method_swallows_is_still_refused(tiny_suite):
    path = tiny_suite(
        budgets=[1],
        cross_check_accountants=[],
        methods={
            "mean": {"method": "test-mean-image", "config": {"attack": "raw_in_sample_caught"}}
        },
    )
    spec, expanded = _run(path)
    folder = folders.find_run(Path(spec.runtime.results), expanded[0].cell_id)
    status = folders.status_of(folder)
    assert status["status"] == folders.REFUSED and "after fit" in status["reason"]
    assert not (folder / "metrics.json").exists() and not (folder / "samples.npz").exists()


def test_a_public_cell_that_touches_private_data_fails_with_a_clear_error(tiny_suite):
    path = tiny_suite(
        budgets=["public"],
        methods={"mean": {"method": "test-mean-image", "config": {"attack": "public_touch"}}},
    )
    spec, expanded = _run(path)
    folder = folders.find_run(Path(spec.runtime.results), expanded[0].cell_id)
    status = folders.status_of(folder)
    assert status["status"] == folders.FAILED
    assert "'public' cell" in status["reason"] and "len()" in status["reason"]


def test_a_fit_that_returns_no_fit_report_fails_the_cell(tiny_suite):
    path = tiny_suite(
        budgets=["public"],
        methods={"mean": {"method": "test-mean-image", "config": {"attack": "dict_report"}}},
    )
    spec, expanded = _run(path)
    folder = folders.find_run(Path(spec.runtime.results), expanded[0].cell_id)
    status = folders.status_of(folder)
    assert status["status"] == folders.FAILED
    assert "fit returned dict; expected a FitReport or None" in status["reason"]
    assert not (folder / folders.FIT).exists()


class _Probe(harness_plugin.Brightness):
    """Records what a metric that declares no private need was handed."""

    name = "test-probe"
    seen: ClassVar[dict] = {}

    def evaluate(self, inputs):
        _Probe.seen = {"private": inputs.private, "extraction": inputs.extraction}
        return super().evaluate(inputs)


def test_metrics_get_the_private_split_only_when_they_declare_it(tiny_suite):
    from isoeps import registry

    registry.register("isoeps.metrics", "test-probe", _Probe, replace=True)
    path = tiny_suite(
        budgets=["public"], extraction_samples=4, metrics={"test-probe": {}, "test-nearest": {}}
    )
    _run(path)
    assert _Probe.seen == {"private": None, "extraction": None}


def test_public_data_from_another_source_is_checked_against_the_private_split(tiny_suite):
    # The same images under other source options: every private image is in "public".
    from isoeps.bench.data import load_cell_data
    from isoeps.errors import DataError

    spec = load_suite(
        tiny_suite(
            datasets={
                "tiny": {
                    "name": "test-tiny",
                    "resolution": 8,
                    "public": {"name": "test-tiny-copy", "n": 64},
                }
            }
        ),
        [],
    )
    with pytest.raises(DataError, match="identical image"):
        load_cell_data(next(iter(spec.datasets.values())))


class _CopySource(harness_plugin.TinySource):
    """Another source whose 'public' split is the private split, under other ids."""

    name = "test-tiny-copy"

    def load(self, split, *, resolution=8, n=None, seed=0):
        data = super().load("private", resolution=resolution, n=n, seed=seed)
        data.ids = [f"copy-{i}" for i in data.ids]
        return data


@pytest.fixture(autouse=True)
def _register_copy_source():
    from isoeps import registry

    registry.register("isoeps.datasets", "test-tiny-copy", _CopySource, replace=True)
