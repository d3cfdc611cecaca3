"""Run folders and stores that isoeps owns: markers, locks naming their holder, and one-line
errors for a store under a file or a corrupt index (issue 13, items 7, 8 and 11)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from isoeps.results import folders, index, merge, reindex


def test_fresh_run_dir_refuses_a_folder_isoeps_did_not_write(tmp_path):
    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "chapter1.tex").write_text("years of work")
    with pytest.raises(folders.StoreError, match=r"thesis exists and was not written by isoeps"):
        folders.fresh_run_dir(mine)
    assert (mine / "chapter1.tex").read_text() == "years of work"
    assert not (mine / folders.MARKER).exists()


def test_fresh_run_dir_clears_its_own_folder_and_keeps_the_marker(tmp_path):
    run = tmp_path / "run"
    folders.fresh_run_dir(run)  # new: created with its marker
    assert folders.is_run_dir(run)
    folders.write_json_atomic(run / folders.STATUS, {"status": "failed"})
    (run / "sub").mkdir()
    (run / "sub" / "x").write_text("x")
    folders.fresh_run_dir(run)
    assert [p.name for p in run.iterdir()] == [folders.MARKER]
    empty = tmp_path / "empty"
    empty.mkdir()
    folders.fresh_run_dir(empty)  # an empty folder is adopted
    assert folders.is_run_dir(empty)


def test_a_second_driver_is_refused_naming_the_holder(tmp_path, holder):
    store = tmp_path / "store"
    pid = holder("store", store)
    with pytest.raises(folders.LockHeldError) as caught, folders.store_lock(store):
        pass
    message = str(caught.value)
    assert f"pid {pid} on host {socket.gethostname()}" in message and str(store) in message
    # results commands that rewrite the store are refused too
    with pytest.raises(folders.LockHeldError, match=f"pid {pid}"):
        reindex(store)
    with pytest.raises(folders.LockHeldError, match=f"pid {pid}"):
        merge(store, [])


def test_the_store_lock_is_reentrant_and_released(tmp_path):
    store = tmp_path / "store"
    with folders.store_lock(store), folders.store_lock(store):
        assert reindex(store) == 0  # the holder itself may reindex
    code = (
        "from isoeps.results import folders; import sys\nwith folders.store_lock(sys.argv[1]): pass"
    )
    subprocess.run([sys.executable, "-c", code, str(store)], check=True, timeout=60)


def test_a_run_folder_being_written_is_not_cleared(tmp_path, holder):
    run = tmp_path / "runs" / "d.m.eps-1.s0.abc"
    pid = holder("cell", run)
    folders.write_json_atomic(run / folders.STATUS, {"status": "finished"})
    with pytest.raises(folders.LockHeldError, match=f"being written .*pid {pid}"):
        folders.fresh_run_dir(run)
    assert folders.status_of(run) == {"status": "finished"}


def test_a_store_under_a_file_is_a_one_line_error(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    store = tmp_path / "file" / "store"
    with pytest.raises(folders.StoreError, match="is under a file"), folders.store_lock(store):
        pass
    with pytest.raises(folders.StoreError, match="is under a file"):
        reindex(store)
    with pytest.raises(folders.StoreError, match="is under a file"):
        folders.fresh_run_dir(store / "runs" / "x")


def test_a_corrupt_index_names_reindex(tmp_path):
    store = tmp_path / "store"
    folders.runs_dir(store).mkdir(parents=True)
    index.index_path(store).write_bytes(b"this is not sqlite" * 100)
    for call in (
        lambda: index.check(store),
        lambda: index.read(store),
        lambda: index.update(store, store / "runs" / "x"),
    ):
        with pytest.raises(folders.StoreError, match="run `isoeps results reindex`"):
            call()
    assert reindex(store) == 0  # the fix works
    index.check(store)
    assert os.path.getsize(index.index_path(store)) > 0
