"""Cells that run away from the store (Ray tasks, SLURM jobs).

The worker runs a cell payload into a worker-local temporary folder and returns that folder's
files (bytes) with the outcome; the driver writes them into the store folder the payload
names. Workers therefore need no shared filesystem for results, and only the driver writes
the store. The temporary folder honours ``TMPDIR`` on the worker.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from isoeps.results import folders

#: What a worker sends back: (relative path -> bytes, the function's result).
Returned = tuple[dict[str, bytes], Any]


def run_away(fn: Callable[[dict[str, Any]], Any], payload: dict[str, Any]) -> Returned:
    """Run ``fn`` on ``payload`` with its ``folder`` moved to a local temporary folder.

    The folder keeps its name (the cell's slug), so logs and results read the same as a
    local run's.

    Args:
        fn: the cell function.
        payload: its argument; ``folder`` names the run folder.

    Returns:
        ``(files, result)``: the local folder's files (relative path -> bytes) and what
        ``fn`` returned.
    """
    with tempfile.TemporaryDirectory(prefix="isoeps-cell-") as tmp:
        local = Path(tmp) / Path(payload["folder"]).name
        result = fn({**payload, "folder": str(local)})
        files = {}
        if local.is_dir():
            for path in sorted(local.rglob("*")):
                if path.is_file():
                    files[path.relative_to(local).as_posix()] = path.read_bytes()
    return files, result


def land(payload: dict[str, Any], returned: Returned) -> Any:
    """Write a worker's files into ``payload["folder"]`` and return its result, pointed there.

    The folder is replaced as a whole; every file is written atomically and ``status.json``
    comes last, so a driver killed while landing leaves an unfinished folder that a restarted
    driver runs again (resume).

    Args:
        payload: the cell's payload; ``folder`` names the run folder.
        returned: what :func:`run_away` returned.

    Returns:
        The result, with ``run_dir`` set to the folder when it is a dict with one.

    Raises:
        ValueError: a file's path leads outside the run folder.
    """
    files, result = returned
    folder = Path(payload["folder"])
    if folder.exists():
        (folder / folders.STATUS).unlink(missing_ok=True)  # unfinished from here on
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    root = folder.resolve()
    for name in sorted(files, key=lambda item: item == folders.STATUS):
        target = (folder / name).resolve()
        if root not in target.parents:
            raise ValueError(f"a worker returned a file outside its run folder: {name!r}")
        folders.write_bytes_atomic(target, files[name])
    if isinstance(result, dict) and "run_dir" in result:
        result = {**result, "run_dir": str(folder)}
    return result
