"""The results package takes verdicts as data (it accounts nothing): ``verify`` callables mark
index rows and keep merge from copying a refused folder; every row carries its adjacency."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from isoeps.results import CELL_COLUMNS, COLUMNS, folders, load, load_cells, merge, reindex
from isoeps.results.index import index_path, read, update

from .test_results_store import make_run


def _verify(bad: set[str]):
    def verify(folder: Path) -> str | None:
        return (
            "does not re-account"
            if folders.read_json(folder / folders.CELL)["cell_id"] in bad
            else None
        )

    return verify


def test_rows_carry_adjacency_and_verdicts(tmp_path):
    make_run(tmp_path, "aaa")
    make_run(tmp_path, "bbb", seed=1)
    make_run(tmp_path, "ccc", seed=2, status="failed")
    assert "adjacency" in CELL_COLUMNS and "verified" in COLUMNS
    cells = load_cells(tmp_path, _verify({"bbb"})).set_index("cell_id")
    assert cells.loc["aaa", "adjacency"] == "add_remove"
    assert cells.loc["aaa", "verified"] is True and cells.loc["bbb", "verified"] is False
    assert cells.loc["bbb", "verify_reason"] == "does not re-account"
    assert cells.loc["ccc", "verified"] is None  # not a finished cell: nothing to verify
    frame = load(tmp_path, _verify({"bbb"}))
    assert set(frame[frame["cell_id"] == "bbb"]["verified"]) == {False}
    assert set(load(tmp_path)["verified"]) == {None}  # not checked


def test_reindex_writes_the_verdicts(tmp_path):
    make_run(tmp_path, "aaa")
    make_run(tmp_path, "bbb", seed=1)
    assert reindex(tmp_path, _verify({"bbb"})) == 2
    cells = read(tmp_path, "cells").set_index("cell_id")
    assert cells.loc["aaa", "verified"] and not cells.loc["bbb", "verified"]
    assert cells.loc["bbb", "verify_reason"] == "does not re-account"
    metrics = read(tmp_path)
    assert set(metrics[metrics["cell_id"] == "bbb"]["verified"]) == {False}


def test_an_index_from_before_the_new_columns_is_upgraded(tmp_path):
    folder = make_run(tmp_path, "aaa")
    path = index_path(tmp_path)
    old_cells = [c for c in CELL_COLUMNS if c not in ("adjacency", "verified", "verify_reason")]
    old_metrics = [c for c in COLUMNS if c != "verified"]
    with sqlite3.connect(path) as connection:
        connection.execute(f"CREATE TABLE cells ({', '.join(old_cells)}, PRIMARY KEY (cell_id))")
        connection.execute(
            f"CREATE TABLE metrics ({', '.join(old_metrics)}, PRIMARY KEY (cell_id, metric))"
        )
    update(tmp_path, folder)
    assert read(tmp_path, "cells").set_index("cell_id").loc["aaa", "adjacency"] == "add_remove"
    assert len(read(tmp_path)) == 2


def test_merge_does_not_copy_what_does_not_verify(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    make_run(b, "bbb")
    make_run(b, "ccc", seed=1)
    counts = merge(a, [b], _verify({"ccc"}))
    assert counts["copied"] == 1 and counts["refused"] == 1
    assert counts["unverified"][0]["reason"] == "does not re-account"
    assert folders.find_run(a, "ccc") is None and folders.find_run(a, "bbb") is not None
