"""Every finished cell is re-verifiable (issue 13, item 10): reindex, merge and report
re-account each private cell's ledger.json against its privacy.json and target, and refuse
or flag what does not hold. Also: a private cell that records nothing is refused (item 5)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import harness_plugin
import pytest

from isoeps.accountants import Ledger, NonPrivate, ledger_digest
from isoeps.bench import cells
from isoeps.bench.runner import run_suite
from isoeps.bench.spec import load_suite
from isoeps.bench.verify import verify_run, verify_store
from isoeps.cli.main import main
from isoeps.results import folders, load, load_cells, merge
from isoeps.results.index import read


def _run_suite(root: Path, **overrides) -> tuple[Path, list]:
    overrides.setdefault("runtime", {"results": str(root / "results")})
    path = root / "suite.yaml"
    path.write_text(harness_plugin.suite_yaml(**overrides))
    spec = load_suite(path)
    expanded = cells.expand(spec)
    run_suite(expanded, store=Path(spec.runtime.results), runtime=spec.runtime)
    return Path(spec.runtime.results), expanded


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, str, str]:
    """A store with one finished private (epsilon 1) and one public cell."""
    store, expanded = _run_suite(
        tmp_path_factory.mktemp("built"), budgets=[1, "public"], cross_check_accountants=[]
    )
    private, public = (c.cell_id for c in expanded)
    return store, private, public


@pytest.fixture
def store(built, tmp_path) -> tuple[Path, Path, str]:
    """A fresh copy of the built store: (store, private run folder, private cell id)."""
    source, private, _ = built
    copy = tmp_path / "store"
    shutil.copytree(source, copy)
    return copy, folders.find_run(copy, private), private


def _edit_privacy(folder: Path, **changes) -> None:
    privacy = json.loads((folder / folders.PRIVACY).read_text())
    privacy.update(changes)
    folders.write_json_atomic(folder / folders.PRIVACY, privacy)


def _raw_ledger(folder: Path, *, update_digest: bool) -> None:
    ledger = Ledger([NonPrivate(reason="read every record")])
    folders.write_text_atomic(folder / folders.LEDGER, ledger.to_json())
    if update_digest:
        _edit_privacy(folder, ledger_sha256=ledger_digest(ledger))


def test_sound_cells_verify_and_carry_adjacency_and_digest(built):
    store, private, public = built
    for cell_id in (private, public):
        assert verify_run(folders.find_run(store, cell_id)) is None
    privacy = json.loads((folders.find_run(store, private) / folders.PRIVACY).read_text())
    ledger = Ledger.from_json((folders.find_run(store, private) / folders.LEDGER).read_text())
    assert privacy["adjacency"] == "add_remove"
    assert privacy["ledger_sha256"] == ledger_digest(ledger)
    assert verify_store(store) == {}


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (lambda f: _edit_privacy(f, epsilon_achieved=37.0), "epsilon"),
        (lambda f: _edit_privacy(f, target_epsilon=37.0), "target"),
        (lambda f: _edit_privacy(f, delta=0.5), "delta"),
        (lambda f: _raw_ledger(f, update_digest=False), "digest"),
        (lambda f: _raw_ledger(f, update_digest=True), "raw"),
        (lambda f: (f / folders.LEDGER).unlink(), "no ledger.json"),
    ],
)
def test_a_tampered_cell_does_not_verify(store, tamper, reason):
    _, folder, cell_id = store
    tamper(folder)
    found = verify_run(folder)
    assert found is not None and reason in found, found
    assert verify_store(store[0])[cell_id]["reason"] == found


def test_merge_does_not_copy_a_tampered_cell(store, tmp_path):
    source, folder, cell_id = store
    _edit_privacy(folder, epsilon_achieved=37.0)
    target = tmp_path / "target"
    counts = merge(target, [source], verify_run)
    assert counts["copied"] == 1 and counts["refused"] == 1
    assert counts["unverified"][0]["run"] == folder.name
    assert folders.find_run(target, cell_id) is None
    # the CLI refuses it too, names it and exits 1
    other = tmp_path / "target2"
    assert main(["results", "merge", str(source), "--results", str(other)]) == 1
    assert folders.find_run(other, cell_id) is None


def test_reindex_marks_a_tampered_cell(store, capsys):
    store_path, folder, cell_id = store
    _raw_ledger(folder, update_digest=True)
    assert main(["results", "reindex", "--results", str(store_path)]) == 1
    assert folder.name in capsys.readouterr().out
    cells_table = read(store_path, "cells").set_index("cell_id")
    assert not cells_table.loc[cell_id, "verified"]
    assert "raw" in cells_table.loc[cell_id, "verify_reason"]
    assert cells_table.loc[cell_id, "adjacency"] == "add_remove"
    metrics = read(store_path)
    assert set(metrics[metrics["cell_id"] == cell_id]["verified"]) == {False}
    assert set(metrics[metrics["cell_id"] != cell_id]["verified"]) == {True}
    assert load_cells(store_path).set_index("cell_id").loc[cell_id, "adjacency"] == "add_remove"


def test_report_leaves_out_and_names_a_tampered_cell(store, tmp_path):
    store_path, folder, cell_id = store
    _edit_privacy(folder, epsilon_achieved=37.0)
    out = tmp_path / "report"
    assert main(["report", "--results", str(store_path), "--reports", str(out)]) == 0
    text = (out / "index.md").read_text()
    assert "unverified" in text and folder.name in text and cell_id in text
    table = (out / "tables" / "tiny.md").read_text()
    assert "| mean | 1 |" not in table and "| mean | public |" in table
    # an untouched store reports the private row
    assert len(load(store_path)) == 2


def test_a_private_cell_that_records_no_release_is_refused(tmp_path):
    store_path, expanded = _run_suite(
        tmp_path,
        budgets=[1],
        cross_check_accountants=[],
        methods={"mean": {"method": "test-mean-image", "config": {"attack": "skip_release"}}},
    )
    status = folders.status_of(folders.find_run(store_path, expanded[0].cell_id))
    assert status["status"] == folders.REFUSED
    assert "an empty ledger in a private cell" in status["reason"]
