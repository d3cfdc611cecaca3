"""The result store: run folders (the truth), a SQLite index, the tidy frame and exports.

This package imports no other isoeps package; the DPImageBench export is wired in ``cli/``.
"""

from isoeps.results.folders import FAILED, FINISHED, REFUSED, find_run, iter_run_dirs, status_of
from isoeps.results.frame import CELL_COLUMNS, COLUMNS
from isoeps.results.index import reindex, update
from isoeps.results.store import (
    export_table,
    finished_samples,
    load,
    load_cells,
    merge,
    public_cells,
)

__all__ = [
    "CELL_COLUMNS",
    "COLUMNS",
    "FAILED",
    "FINISHED",
    "REFUSED",
    "export_table",
    "find_run",
    "finished_samples",
    "iter_run_dirs",
    "load",
    "load_cells",
    "merge",
    "public_cells",
    "reindex",
    "status_of",
    "update",
]
