"""The commands that write a store delete only what isoeps wrote, refuse a second writer,
and check the store, its index and the device before any work (issue 13, items 7, 8, 11)."""

from __future__ import annotations

import socket
from pathlib import Path

import harness_plugin  # noqa: F401  (registers the test doubles)
import pytest

from isoeps.bench import cells
from isoeps.bench.runner import _fresh_folder, run_suite
from isoeps.bench.spec import load_suite
from isoeps.cli.main import main
from isoeps.results import folders, index

ADHOC = [
    "cell",
    "--method",
    "test-mean-image",
    "--dataset",
    "test-tiny",
    "--resolution",
    "8",
    "--epsilon",
    "public",
    "--n-samples",
    "4",
    "--import",
    "harness_plugin",
    "--metrics",
    "test-brightness",
]


def test_cell_out_never_deletes_a_users_folder(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    assert main([*ADHOC, "--out", str(mine)]) == 2
    err = capsys.readouterr().err
    assert str(mine) in err and "not written by isoeps" in err and "Traceback" not in err
    assert (mine / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]


def test_cell_out_replaces_its_own_finished_folder_only_with_force(tmp_path, capsys):
    out = tmp_path / "one"
    assert main([*ADHOC, "--out", str(out)]) == 0
    assert folders.is_run_dir(out) and folders.status_of(out)["status"] == "finished"
    before = (out / folders.STATUS).stat().st_mtime_ns
    capsys.readouterr()
    assert main([*ADHOC, "--out", str(out)]) == 2
    assert "finished cell; pass --force" in capsys.readouterr().err
    assert (out / folders.STATUS).stat().st_mtime_ns == before
    assert main([*ADHOC, "--out", str(out), "--force"]) == 0
    assert folders.status_of(out)["status"] == "finished"


def test_runner_refuses_to_clear_an_unmarked_folder(tmp_path):
    folder = tmp_path / "runs" / "d.m.eps-1.s0.abc"
    folder.mkdir(parents=True)
    (folder / "cell.json").write_text("{}")
    with pytest.raises(folders.StoreError, match=r"d\.m\.eps-1\.s0\.abc exists and was not"):
        _fresh_folder(folder)
    assert (folder / "cell.json").is_file()


def test_a_second_run_on_one_store_is_refused(tiny_suite, tmp_path, holder, capsys):
    path = tiny_suite(budgets=["public"])
    store = tmp_path / "results"
    pid = holder("store", store)
    assert main(["run", str(path), "--no-report"]) == 2
    err = capsys.readouterr().err
    assert f"pid {pid} on host {socket.gethostname()}" in err and "in use" in err
    assert not folders.runs_dir(store).exists()  # no cell ran


def test_a_cell_folder_another_process_writes_is_left_alone(tiny_suite, tmp_path, holder):
    path = tiny_suite(budgets=["inf", "public"])
    spec = load_suite(path, [])
    expanded = cells.expand(spec)
    store = Path(spec.runtime.results)
    busy = folders.run_dir(store, expanded[0].slug)
    pid = holder("cell", busy)
    folders.write_json_atomic(busy / folders.CELL, expanded[0].model_dump(mode="json"))
    (busy / "theirs.txt").write_text("in progress")
    summary = run_suite(expanded, store=store, runtime=spec.runtime)
    outcomes = {o.cell_id: o for o in summary.ran}
    assert outcomes[expanded[1].cell_id].status == "finished"
    refused = outcomes[expanded[0].cell_id]
    assert refused.status == "failed" and f"pid {pid}" in refused.reason
    assert (busy / "theirs.txt").read_text() == "in progress"
    assert not (busy / folders.STATUS).exists()  # nothing recorded over the other writer


def test_a_corrupt_index_is_reported_before_any_work(tiny_suite, tmp_path, capsys):
    path = tiny_suite(budgets=["public"])
    store = tmp_path / "results"
    store.mkdir()
    index.index_path(store).write_bytes(b"garbage" * 500)
    assert main(["run", str(path), "--no-report"]) == 2
    err = capsys.readouterr().err
    assert "run `isoeps results reindex`" in err and "Traceback" not in err
    assert not folders.runs_dir(store).exists()
    assert main(["results", "reindex", "--results", str(store)]) == 0
    assert main(["run", str(path), "--no-report"]) == 0


def test_a_store_under_a_file_is_a_one_line_error(tiny_suite, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    path = tiny_suite(budgets=["public"], runtime={"results": str(tmp_path / "file" / "store")})
    assert main(["run", str(path), "--no-report"]) == 2
    err = capsys.readouterr().err
    assert "is under a file" in err and "Traceback" not in err
    assert main([*ADHOC, "--out", str(tmp_path / "file" / "run")]) == 2
    assert "is under a file" in capsys.readouterr().err


def test_cuda_without_cuda_is_refused_before_any_work(tiny_suite, tmp_path, monkeypatch, capsys):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    path = tiny_suite(budgets=["public"])
    for argv in (
        ["run", str(path), "--no-report", "--device", "cuda"],
        ["prepare", str(path), "--device", "cuda"],
        [*ADHOC, "--out", str(tmp_path / "one"), "--device", "cuda"],
    ):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert "CUDA is not available" in err and "Traceback" not in err, argv
    assert not (tmp_path / "results").exists() and not (tmp_path / "one").exists()
