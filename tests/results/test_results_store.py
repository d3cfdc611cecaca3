"""The store: atomic writes, the tidy frame from run folders, index, merge and export."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from isoeps.results import COLUMNS, export_table, folders, load, load_cells, merge, reindex
from isoeps.results.index import read


def make_run(
    store: Path,
    cell_id: str,
    *,
    status: str | None = "finished",
    seed: int = 0,
    method: str = "m",
    budget: str = "1",
    value: float = 1.0,
    ci: tuple[float, float] | None = None,
) -> Path:
    folder = folders.run_dir(store, f"d.{method}.eps-{budget}.s{seed}.{cell_id}")
    cell = {
        "cell_id": cell_id,
        "suite": "s",
        "dataset_label": "d",
        "dataset": {"name": "synthetic-faces"},
        "method_label": method,
        "method_name": "wavelet-two-stage",
        "method_version": "1",
        "budget": budget,
        "epsilon": None if budget in ("inf", "public") else float(budget),
        "seed": seed,
        "n_samples": 10,
    }
    folders.write_json_atomic(folder / folders.CELL, cell)
    folders.write_json_atomic(
        folder / folders.PRIVACY,
        {"delta": 1e-5, "epsilon_achieved": 0.99, "accountant": "prv", "adjacency": "add_remove"},
    )
    folders.write_json_atomic(folder / folders.ENVIRONMENT, {"git_commit": "abc", "device": "cpu"})
    folders.write_json_atomic(
        folder / folders.METRICS,
        {
            "values": [
                {
                    "name": "kid",
                    "metric": "kid",
                    "value": value,
                    "std": 0.1,
                    "higher_is_better": False,
                    "n": 10,
                    "backbone": "inception",
                    "backbone_sha256": "7ff4",
                    "not_dp": False,
                    **({} if ci is None else {"ci_low": ci[0], "ci_high": ci[1]}),
                },
                {
                    "name": "mem_ratio",
                    "metric": "mem",
                    "value": 2.0,
                    "higher_is_better": True,
                    "n": 10,
                    "not_dp": True,
                    "details": {"k": [1, 2]},
                },
            ]
        },
    )
    if status:
        folders.write_json_atomic(folder / folders.STATUS, {"status": status, "wall_time_s": 1})
    return folder


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "a" / "x.json"
    folders.write_json_atomic(target, {"v": float("inf")})
    folders.write_json_atomic(target, {"v": 2})
    assert json.loads(target.read_text()) == {"v": 2}
    assert [p.name for p in target.parent.iterdir()] == ["x.json"]


def test_load_one_row_per_cell_metric_finished_only(tmp_path):
    make_run(tmp_path, "aaa")
    make_run(tmp_path, "bbb", status=None)  # interrupted: not in the frame
    make_run(tmp_path, "ccc", status="failed")
    frame = load(tmp_path)
    assert list(frame.columns) == list(COLUMNS)
    assert len(frame) == 2 and set(frame["cell_id"]) == {"aaa"}
    mem = frame[frame["metric"] == "mem_ratio"].iloc[0]
    assert mem["not_dp"] and mem["higher_is_better"] and json.loads(mem["details"]) == {"k": [1, 2]}
    kid = frame[frame["metric"] == "kid"].iloc[0]
    assert kid["backbone_sha256"] == "7ff4" and kid["git_commit"] == "abc"
    cells = load_cells(tmp_path).set_index("cell_id")["status"].to_dict()
    assert cells == {"aaa": "finished", "bbb": "incomplete", "ccc": "failed"}


def test_index_merge_and_export(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    make_run(a, "aaa")
    make_run(b, "bbb", seed=1, value=3.0)
    make_run(b, "aaa", status="failed")  # never replaces a finished folder
    assert reindex(a) == 1
    counts = merge(a, [b])
    assert counts == {"copied": 1, "skipped": 1, "refused": 0, "unverified": []}
    assert sorted(read(a)["cell_id"].unique()) == ["aaa", "bbb"]
    assert sorted(load(a)["cell_id"].unique()) == ["aaa", "bbb"]
    for fmt in ("csv", "parquet"):
        out = export_table(a, tmp_path / f"x.{fmt}", fmt=fmt)
        again = load(out)
        assert len(again) == 4 and set(again["metric"]) == {"kid", "mem_ratio"}
    with pytest.raises(ValueError, match="format"):
        export_table(a, tmp_path / "x.txt", fmt="txt")


def test_load_rejects_non_store(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a results store"):
        load(tmp_path)
    shutil.rmtree(tmp_path)


def test_per_value_cis_are_carried_and_old_stores_read_them_as_none(tmp_path):
    import sqlite3

    store = tmp_path / "s"
    make_run(store, "aaa", ci=(0.8, 1.2))
    kid = load(store).set_index("metric").loc["kid"]
    assert (kid["ci_low"], kid["ci_high"]) == (0.8, 1.2)
    reindex(store)
    assert read(store).set_index("metric").loc["kid", "ci_high"] == 1.2
    # an index and an export written before the columns existed
    connection = sqlite3.connect(store / folders.INDEX)
    for column in ("ci_low", "ci_high"):
        connection.execute(f"ALTER TABLE metrics DROP COLUMN {column}")
    connection.commit()
    connection.close()
    old = read(store)
    assert list(old.columns) == list(COLUMNS) and old["ci_low"].isna().all()
    csv = tmp_path / "old.csv"
    load(store).drop(columns=["ci_low", "ci_high"]).to_csv(csv, index=False)
    assert list(load(csv).columns) == list(COLUMNS) and load(csv)["ci_high"].isna().all()
