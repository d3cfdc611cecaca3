"""Run folders, the truth of the store, and atomic writes.

One folder per cell under ``<store>/runs/``. Every file is written to a temporary name in the
same folder and renamed into place, so a killed process never leaves a half-written file.
``status.json`` is written last: a cell is *finished* only when it says so, and a folder
without it is an interrupted run that the runner redoes.

isoeps deletes only what it wrote: a run folder carries :data:`MARKER` from its creation, and
:func:`fresh_run_dir` clears nothing else. The marker is also the folder's lock file: the
process writing a cell holds it (:func:`claim_run_dir`), and the driver of a store holds the
store's lock (:func:`store_lock`), so a second runner is refused, naming the holder.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

RUNS = "runs"
#: Audited runs (``isoeps audit``, a suite's ``audit:`` block): separate runs with canaries,
#: kept apart from ``runs/`` so that no table ever reads an audited run's metrics.
AUDITS = "audits"
INDEX = "index.sqlite"

CELL = "cell.json"
CONFIG = "config.yaml"
OVERRIDES = "overrides.txt"
ENVIRONMENT = "environment.json"
LEDGER = "ledger.json"
PRIVACY = "privacy.json"
#: What ``fit`` reported (:class:`isoeps.methods.base.FitReport`): steps, sigma, q, C, time.
FIT = "fit.json"
METRICS = "metrics.json"
SAMPLES = "samples.npz"
EXTRACTION = "extraction.npz"
OPEN_PROMPT_SAMPLES = "open_prompt_samples.npz"
GRID = "grid.png"
#: An audited run's settings, coins, scores and bound (:mod:`isoeps.bench.audit`).
AUDIT = "audit.json"
LOG = "log.txt"
STATUS = "status.json"
#: Marks a run folder as written by isoeps (only such folders are ever cleared); it is also the
#: lock file held by the process writing the cell, and holds that process's pid and host.
MARKER = ".isoeps-run"
#: The store's lock file, held by the driver of a run; holds the driver's pid and host.
STORE_LOCK = ".isoeps-store.lock"

FINISHED, FAILED, REFUSED = "finished", "failed", "refused"


def jsonable(value: Any) -> Any:
    """``value`` with inf/nan as strings and numpy scalars as Python numbers, for JSON."""
    if isinstance(value, float) and (math.isinf(value) or math.isnan(value)):
        return str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return jsonable(value.item())
    return value


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file in the same folder, then rename.

    Args:
        path: the target file; its folder is created.
        data: the content.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically, as :func:`write_bytes_atomic`.

    Args:
        path: the target file; its folder is created.
        text: the content.
    """
    write_bytes_atomic(path, text.encode())


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write ``payload`` as indented JSON to ``path`` atomically (inf/nan as strings).

    Args:
        path: the target file; its folder is created.
        payload: a JSON-serialisable value, after :func:`jsonable`.
    """
    write_text_atomic(path, json.dumps(jsonable(payload), indent=2, sort_keys=False) + "\n")


def write_npz_atomic(path: Path, **arrays: Any) -> None:
    import numpy as np

    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    write_bytes_atomic(path, buffer.getvalue())


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def runs_dir(store: Path) -> Path:
    return Path(store) / RUNS


def run_dir(store: Path, slug: str) -> Path:
    """The folder of the run ``slug`` in ``store`` (not created).

    Args:
        store: the results store.
        slug: the run folder's name.

    Returns:
        ``<store>/runs/<slug>``.
    """
    return runs_dir(store) / slug


def audit_dir(store: Path, slug: str, *, kind: str) -> Path:
    """The folder of cell ``slug``'s audited run of ``kind`` (not created).

    Args:
        store: the results store.
        slug: the audited cell's run-folder name.
        kind: ``black-box`` or ``white-box``.

    Returns:
        ``<store>/audits/<kind>/<slug>``.
    """
    return Path(store) / AUDITS / kind / slug


def iter_audit_dirs(store: Path) -> Iterator[Path]:
    """Every finished audited run of a store (its ``audit.json`` written), sorted by path."""
    root = Path(store) / AUDITS
    if root.is_dir():
        yield from sorted(
            p
            for p in root.glob("*/*")
            if p.is_dir() and (p / AUDIT).is_file() and (p / CELL).is_file()
        )


def iter_run_dirs(store: Path) -> Iterator[Path]:
    """Every run folder of a store (finished or not), sorted by name."""
    root = runs_dir(store)
    if root.is_dir():
        yield from sorted(p for p in root.iterdir() if p.is_dir() and (p / CELL).is_file())


def status_of(folder: Path) -> dict[str, Any] | None:
    """The final marker's content, or None for an unfinished (interrupted) run."""
    path = Path(folder) / STATUS
    if not path.is_file():
        return None
    return read_json(path)


def find_run(store: Path, cell_id: str) -> Path | None:
    """The run folder of ``cell_id`` (folder names end with the id).

    Args:
        store: the results store.
        cell_id: the cell's id.

    Returns:
        The first match in name order; None when there is none.
    """
    root = runs_dir(store)
    if not root.is_dir():
        return None
    matches = sorted(root.glob(f"*.{cell_id}"))
    return matches[0] if matches else None


# -- ownership and locks ------------------------------------------------------------------------


class StoreError(ValueError):
    """A store or run folder that isoeps may not use as asked (not its own, held by another
    process, under a file, corrupt). A user-facing error: the CLI prints it as one line and
    exits 2 (it is a ValueError for that; this package imports no other isoeps module)."""


class LockHeldError(StoreError):
    """Another process holds the lock; the message names its pid and host."""


def check_folder_path(path: Path, *, what: str = "results path") -> None:
    """Raise :class:`StoreError` when ``path`` or a folder above it exists as a non-folder.

    Args:
        path: the path that is to be a folder (it need not exist).
        what: names the path in the error.

    Raises:
        StoreError: ``path`` or its nearest existing parent is not a folder.
    """
    path = Path(path)
    for candidate in (path, *path.parents):
        if candidate.exists():
            if not candidate.is_dir():
                where = "is a file" if candidate == path else f"is under a file, {candidate}"
                raise StoreError(f"{what} {path} {where}, not a folder")
            return


_HELD: dict[str, list[Any]] = {}  # lock path -> [fd, depth]: re-entrant within one process
_HELD_GUARD = threading.Lock()


def _holder_text(path: Path) -> str:
    try:
        holder = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        holder = {}
    if not isinstance(holder, dict) or "pid" not in holder:
        return "another process"
    since = f", since {holder['since']}" if holder.get("since") else ""
    command = f"{holder['command']}, " if holder.get("command") else ""
    return f"{command}pid {holder['pid']} on host {holder.get('host', '?')}{since}"


def _try_lock(fd: int) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextlib.contextmanager
def _exclusive(path: Path, *, command: str, busy: str) -> Iterator[None]:
    """Hold an exclusive, non-blocking lock on ``path`` (created if missing), writing this
    process's pid, host and ``command`` into it. Re-entrant within one process; the kernel
    releases it when the process dies, so a killed holder leaves no stale lock."""
    key = os.path.abspath(path)
    with _HELD_GUARD:
        held = _HELD.get(key)
        if held is not None:
            held[1] += 1
    if held is None:
        fd = os.open(key, os.O_RDWR | os.O_CREAT, 0o644)
        if not _try_lock(fd):
            os.close(fd)
            raise LockHeldError(f"{busy} (held by {_holder_text(Path(key))}; lock file {key})")
        os.ftruncate(fd, 0)
        os.write(
            fd,
            json.dumps(
                {
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "command": command,
                    "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                }
            ).encode(),
        )
        with _HELD_GUARD:
            _HELD[key] = [fd, 1]
    try:
        yield
    finally:
        with _HELD_GUARD:
            entry = _HELD[key]
            entry[1] -= 1
            last = entry[1] == 0
            if last:
                del _HELD[key]
        if last:
            os.close(entry[0])  # releases the lock


@contextlib.contextmanager
def store_lock(store: Path, *, command: str = "isoeps run") -> Iterator[None]:
    """Hold the store's lock for a whole run: a second driver on the same store is refused
    with an error naming this one's pid and host.

    Args:
        store: the results store; created if missing.
        command: the command named in the lock, for another driver's error.

    Raises:
        StoreError: ``store`` is not a folder path.
        LockHeldError: another process holds the store's lock.
    """
    store = Path(store)
    check_folder_path(store)
    store.mkdir(parents=True, exist_ok=True)
    with _exclusive(
        store / STORE_LOCK, command=command, busy=f"the store {store} is in use by another run"
    ):
        yield


def is_run_dir(folder: Path) -> bool:
    """Whether ``folder`` carries isoeps's run-folder marker."""
    return (Path(folder) / MARKER).is_file()


def check_own(folder: Path) -> None:
    """Raise :class:`StoreError` unless ``folder`` is missing, empty or an isoeps run folder."""
    folder = Path(folder)
    check_folder_path(folder, what="run folder")
    if folder.is_dir() and not is_run_dir(folder) and any(folder.iterdir()):
        raise StoreError(
            f"{folder} exists and was not written by isoeps (no {MARKER} marker); isoeps "
            "deletes only folders it created: remove it yourself or choose another folder"
        )


@contextlib.contextmanager
def claim_run_dir(folder: Path, *, command: str = "isoeps cell") -> Iterator[None]:
    """Hold ``folder``'s lock while writing its cell (created, with its marker, if missing).

    Refuses a folder isoeps did not write, and one that another process is writing.

    Args:
        folder: the run folder.
        command: the command named in the lock, for another process's error.

    Raises:
        StoreError: ``folder`` exists without isoeps's marker.
        LockHeldError: another process is writing ``folder``.
    """
    folder = Path(folder)
    check_own(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with _exclusive(
        folder / MARKER,
        command=command,
        busy=f"run folder {folder} is being written by another process",
    ):
        yield


def fresh_run_dir(folder: Path) -> None:
    """Empty ``folder`` for a (re-)run: only an isoeps run folder (marked) is cleared, and
    only by the process that holds (or can take) its lock. The marker stays."""
    folder = Path(folder)
    with claim_run_dir(folder):
        (folder / STATUS).unlink(missing_ok=True)  # unfinished from here on
        for entry in folder.iterdir():
            if entry.name == MARKER:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
