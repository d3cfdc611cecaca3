"""Session-wide test set-up: an isolated cache root and a quiet, deterministic torch."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    # Tests never touch the user's cache; one root per session lets slow fixtures share models.
    os.environ["ISOEPS_CACHE_DIR"] = str(tmp_path_factory.mktemp("isoeps-cache"))


@pytest.fixture(autouse=True)
def _fresh_dataset_memo() -> None:
    # A test may register a source anew or patch one: no test sees another's rendered splits.
    from isoeps.bench import data

    data._EMBEDDED_MEMO.clear()


HOLD = textwrap.dedent("""
    import sys, time
    from isoeps.results import folders
    kind, path = sys.argv[1], sys.argv[2]
    lock = folders.store_lock(path) if kind == "store" else folders.claim_run_dir(path)
    with lock:
        print("ready", flush=True)
        time.sleep(120)
""")


@pytest.fixture
def holder():
    """Start a process that holds a store lock or a run-folder lock; yields its pid."""
    started = []

    def start(kind: str, path: Path) -> int:
        process = subprocess.Popen(
            [sys.executable, "-c", HOLD, kind, str(path)], stdout=subprocess.PIPE, text=True
        )
        started.append(process)
        assert process.stdout.readline().strip() == "ready"
        return process.pid

    yield start
    for process in started:
        process.kill()
        process.wait(timeout=30)
