"""The SQLite index: one row per (cell, metric), one per cell and one per audited run (the
``audits`` table), rebuilt from run folders.

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
from isoeps.results.audits import AUDIT_COLUMNS, audit_row
from isoeps.results.frame import (
    CELL_COLUMNS,
    COLUMNS,
    Verify,
    cell_row,
    metric_rows,
    with_columns,
)


def index_path(store: Path) -> Path:
    return Path(store) / folders.INDEX


def _corrupt(path: Path, exc: sqlite3.DatabaseError) -> folders.StoreError:
    return folders.StoreError(
        f"the index {path} is unreadable ({exc}); run `isoeps results "
        "reindex` to rebuild it from the run folders"
    )


@contextlib.contextmanager
def _connect(store: Path) -> Iterator[sqlite3.Connection]:
    path = index_path(store)
    folders.check_folder_path(Path(store))
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        connection = sqlite3.connect(path, timeout=60)
    except sqlite3.DatabaseError as exc:
        raise _corrupt(path, exc) from None
    try:
        try:
            _ensure_schema(connection)
        except sqlite3.DatabaseError as exc:
            raise _corrupt(path, exc) from None
        yield connection
        connection.commit()
    finally:
        connection.close()


def check(store: Path) -> None:
    """Raise :class:`~isoeps.results.folders.StoreError` (naming the fix) when the store's
    index exists but is not a sound SQLite database; a run checks this before any work."""
    path = index_path(store)
    if not path.exists():
        return
    try:
        connection = sqlite3.connect(path)
    except sqlite3.DatabaseError as exc:
        raise _corrupt(path, exc) from None
    try:
        result = connection.execute("PRAGMA quick_check").fetchone()
        if not result or result[0] != "ok":
            raise _corrupt(path, sqlite3.DatabaseError(str(result[0] if result else "no result")))
        _ensure_schema(connection)
    except sqlite3.DatabaseError as exc:
        raise _corrupt(path, exc) from None
    finally:
        connection.close()


#: Each table's columns.
_TABLES = {"metrics": COLUMNS, "cells": CELL_COLUMNS, "audits": AUDIT_COLUMNS}


def _ensure_schema(connection: sqlite3.Connection) -> None:
    metric_cols = ", ".join(f'"{c}"' for c in COLUMNS)
    cell_cols = ", ".join(f'"{c}"' for c in CELL_COLUMNS)
    connection.execute(
        f"CREATE TABLE IF NOT EXISTS metrics ({metric_cols}, PRIMARY KEY (cell_id, metric))"
    )
    connection.execute(f"CREATE TABLE IF NOT EXISTS cells ({cell_cols}, PRIMARY KEY (cell_id))")
    audit_cols = ", ".join(f'"{c}"' for c in AUDIT_COLUMNS)
    connection.execute(
        f"CREATE TABLE IF NOT EXISTS audits ({audit_cols}, PRIMARY KEY (cell_id, kind))"
    )
    for table, columns in _TABLES.items():
        # an index written before a column was added: add it (NULL until the cell is re-indexed)
        have = {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
        for column in columns:
            if column not in have:
                connection.execute(f'ALTER TABLE {table} ADD COLUMN "{column}"')


def _insert(table: str, columns: tuple[str, ...]) -> str:
    names = ", ".join(f'"{c}"' for c in columns)
    return f"INSERT OR REPLACE INTO {table} ({names}) VALUES ({', '.join('?' for _ in columns)})"


def _replace(connection: sqlite3.Connection, folder: Path, verify: Verify | None = None) -> None:
    if verify is not None:  # once per folder, for the cell row and its metric rows
        reason = verify(folder)
        verify = lambda _folder, _reason=reason: _reason
    cell = cell_row(folder, verify)
    connection.execute("DELETE FROM metrics WHERE cell_id = ?", (cell["cell_id"],))
    connection.execute(_insert("cells", CELL_COLUMNS), [_sql(cell[c]) for c in CELL_COLUMNS])
    for row in metric_rows(folder, verify):
        connection.execute(_insert("metrics", COLUMNS), [_sql(row.get(c)) for c in COLUMNS])


def _sql(value: Any) -> Any:
    return value if value is None or isinstance(value, (int, float, str, bytes)) else str(value)


def update(store: Path, folder: Path, verify: Verify | None = None) -> None:
    """Insert or replace one run folder's rows (the driver calls this after each cell).

    Args:
        store: the results store.
        folder: the run folder.
        verify: ``folder -> None | reason``; None for no check.
    """
    with _connect(store) as connection:
        _replace(connection, Path(folder), verify)


def update_audit(store: Path, folder: Path) -> None:
    """Insert or replace one audited run's row (the driver calls this after each audit).

    Args:
        store: the results store.
        folder: the audited run folder.
    """
    with _connect(store) as connection:
        _replace_audit(connection, Path(folder))


def _replace_audit(connection: sqlite3.Connection, folder: Path) -> None:
    row = audit_row(folder)
    connection.execute(_insert("audits", AUDIT_COLUMNS), [_sql(row[c]) for c in AUDIT_COLUMNS])


def reindex(store: Path, verify: Verify | None = None) -> int:
    """Rebuild the index from the run folders and the audited runs. Returns the number of cells
    indexed (audited runs not counted).

    With ``verify`` (``folder -> None | reason``: ``isoeps results reindex`` passes the bench
    layer's re-accounting), every finished cell's rows carry its verdict (``verified``; the
    cells table also ``verify_reason``). Takes the store's lock, so it is refused while a run
    drives the store.

    Args:
        store: the results store.
        verify: see above; None for no check.

    Raises:
        LockHeldError: a run holds the store's lock.
        StoreError: ``store`` is not a folder path.
    """
    path = index_path(store)
    folders.check_folder_path(Path(store))
    count = 0
    with folders.store_lock(Path(store), command="isoeps results reindex"):
        path.unlink(missing_ok=True)
        with _connect(store) as connection:
            for folder in folders.iter_run_dirs(store):
                _replace(connection, folder, verify)
                count += 1
            for folder in folders.iter_audit_dirs(store):
                _replace_audit(connection, folder)
    return count


def read(store_or_index: Path, table: str = "metrics") -> Any:
    """The index's ``metrics`` (or ``cells``, or ``audits``) table as a DataFrame.

    Args:
        store_or_index: a results store, or its index file.
        table: ``metrics``, ``cells`` or ``audits``.

    Returns:
        The table with all its columns (one the index predates is None); ``verified`` holds
        True, False or None.

    Raises:
        FileNotFoundError: there is no index.
        ValueError: ``table`` is neither.
        StoreError: the index is unreadable.
    """
    import pandas as pd

    path = Path(store_or_index)
    if path.is_dir():
        path = index_path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no index at {path}; run `isoeps results reindex`")
    if table not in _TABLES:
        raise ValueError(f"table must be one of {sorted(_TABLES)}, got {table!r}")
    connection = sqlite3.connect(path)
    try:
        frame = pd.read_sql_query(f"SELECT * FROM {table}", connection)
    except sqlite3.DatabaseError as exc:
        raise _corrupt(path, exc) from None
    except Exception as exc:  # pandas wraps sqlite errors in its own DatabaseError
        if isinstance(exc.__cause__ or exc.__context__, sqlite3.DatabaseError):
            raise _corrupt(path, exc.__cause__ or exc.__context__) from None
        raise
    finally:
        connection.close()
    # an index written before a column existed (and not updated since) reads it as None
    frame = with_columns(frame, _TABLES[table])
    if "higher_is_better" in frame:
        frame["higher_is_better"] = frame["higher_is_better"].astype(bool)
    for column in ("not_dp", "secure"):
        if column in frame:
            frame[column] = frame[column].astype(bool)
    if "verified" in frame:  # True, False or None (not checked)
        frame["verified"] = (
            frame["verified"].astype(object).map(lambda v: None if pd.isna(v) else bool(v))
        )
    return frame
