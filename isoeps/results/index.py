"""The SQLite index: one row per (cell, metric) plus one per cell, rebuilt from run folders.

Only the driver process writes it (SQLite locks badly on NFS and Lustre); workers write run
folders only. The index is a cache of the folders: :func:`reindex` rebuilds it at any time.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from isoeps.results import folders
from isoeps.results.frame import CELL_COLUMNS, COLUMNS, cell_row, metric_rows


def index_path(store: Path) -> Path:
    return Path(store) / folders.INDEX


@contextlib.contextmanager
def _connect(store: Path) -> Iterator[sqlite3.Connection]:
    path = index_path(store)
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, timeout=60)
    try:
        _ensure_schema(connection)
        yield connection
        connection.commit()
    finally:
        connection.close()


def _ensure_schema(connection: sqlite3.Connection) -> None:
    metric_cols = ", ".join(f'"{c}"' for c in COLUMNS)
    cell_cols = ", ".join(f'"{c}"' for c in CELL_COLUMNS)
    connection.execute(
        f"CREATE TABLE IF NOT EXISTS metrics ({metric_cols}, PRIMARY KEY (cell_id, metric))"
    )
    connection.execute(f"CREATE TABLE IF NOT EXISTS cells ({cell_cols}, PRIMARY KEY (cell_id))")


def _replace(connection: sqlite3.Connection, folder: Path) -> None:
    cell = cell_row(folder)
    connection.execute("DELETE FROM metrics WHERE cell_id = ?", (cell["cell_id"],))
    connection.execute(
        f"INSERT OR REPLACE INTO cells VALUES ({', '.join('?' for _ in CELL_COLUMNS)})",
        [cell[c] for c in CELL_COLUMNS],
    )
    for row in metric_rows(folder):
        connection.execute(
            f"INSERT OR REPLACE INTO metrics VALUES ({', '.join('?' for _ in COLUMNS)})",
            [_sql(row.get(c)) for c in COLUMNS],
        )


def _sql(value: Any) -> Any:
    return value if value is None or isinstance(value, (int, float, str, bytes)) else str(value)


def update(store: Path, folder: Path) -> None:
    """Insert or replace one run folder's rows (the driver calls this after each cell)."""
    with _connect(store) as connection:
        _replace(connection, Path(folder))


def reindex(store: Path) -> int:
    """Rebuild the index from the run folders. Returns the number of cells indexed."""
    path = index_path(store)
    path.unlink(missing_ok=True)
    count = 0
    with _connect(store) as connection:
        for folder in folders.iter_run_dirs(store):
            _replace(connection, folder)
            count += 1
    return count


def read(store_or_index: Path, table: str = "metrics") -> Any:
    """The index's ``metrics`` (or ``cells``) table as a DataFrame."""
    import pandas as pd

    path = Path(store_or_index)
    if path.is_dir():
        path = index_path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no index at {path}; run `isoeps results reindex`")
    if table not in ("metrics", "cells"):
        raise ValueError(f"table must be 'metrics' or 'cells', got {table!r}")
    connection = sqlite3.connect(path)
    try:
        frame = pd.read_sql_query(f"SELECT * FROM {table}", connection)
    finally:
        connection.close()
    if "higher_is_better" in frame:
        frame["higher_is_better"] = frame["higher_is_better"].astype(bool)
    for column in ("not_dp", "secure"):
        if column in frame:
            frame[column] = frame[column].astype(bool)
    return frame
