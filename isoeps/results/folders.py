"""Run folders, the truth of the store, and atomic writes.

One folder per cell under ``<store>/runs/``. Every file is written to a temporary name in the
same folder and renamed into place, so a killed process never leaves a half-written file.
``status.json`` is written last: a cell is *finished* only when it says so, and a folder
without it is an interrupted run that the runner redoes.
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

RUNS = "runs"
INDEX = "index.sqlite"

CELL = "cell.json"
CONFIG = "config.yaml"
OVERRIDES = "overrides.txt"
ENVIRONMENT = "environment.json"
LEDGER = "ledger.json"
PRIVACY = "privacy.json"
METRICS = "metrics.json"
SAMPLES = "samples.npz"
EXTRACTION = "extraction.npz"
OPEN_PROMPT_SAMPLES = "open_prompt_samples.npz"
GRID = "grid.png"
LOG = "log.txt"
STATUS = "status.json"

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
    """Write ``data`` to ``path`` through a temp file in the same folder, then rename."""
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
    write_bytes_atomic(path, text.encode())


def write_json_atomic(path: Path, payload: Any) -> None:
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
    return runs_dir(store) / slug


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
    """The run folder of ``cell_id`` (folder names end with the id)."""
    root = runs_dir(store)
    if not root.is_dir():
        return None
    matches = sorted(root.glob(f"*.{cell_id}"))
    return matches[0] if matches else None
