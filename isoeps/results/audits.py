"""The audited runs of a store: one row per audited cell, for the index and the reports.

An audited run (``<store>/audits/<slug>/``) is a separate run of a cell's configuration with
canaries in its private split; its ``audit.json`` holds the one-run lower bound on epsilon
(Steinke, Nasr and Jagielski 2023). Its metrics are never read: a row here carries the
bound and how it was measured, keyed by the cell id of the configuration it audits, so a
report can show it beside that configuration's (unaudited) row.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from isoeps.results import folders

#: What the bound was measured on, and how (``audit.json``'s fields, copied as they are).
_FROM_AUDIT_FILE: tuple[str, ...] = (
    "epsilon_lower",
    "target_epsilon",
    "epsilon_achieved",
    "delta",
    "m",
    "k",
    "beta",
    "correct",
    "included",
    "distance",
    "wall_time_s",
)
#: Columns of the ``audits`` table, in order: the audited configuration, the bound, the folder.
AUDIT_COLUMNS: tuple[str, ...] = (
    "cell_id",
    "kind",
    "suite",
    "dataset",
    "method",
    "method_name",
    "budget",
    "seed",
    "adjacency",
    *_FROM_AUDIT_FILE,
    "run_dir",
)


def audit_row(folder: Path) -> dict[str, Any]:
    """The audits-table row of one audited run folder.

    Args:
        folder: an audited run folder (with ``cell.json`` and ``audit.json``).

    Returns:
        ``{column: value}`` for :data:`AUDIT_COLUMNS`.
    """
    folder = Path(folder)
    cell = folders.read_json(folder / folders.CELL)
    audit = folders.read_json(folder / folders.AUDIT)
    privacy_path = folder / folders.PRIVACY
    privacy = folders.read_json(privacy_path) if privacy_path.is_file() else {}
    return {
        "cell_id": cell["cell_id"],
        "kind": audit.get("kind", "black-box"),
        "suite": cell.get("suite"),
        "dataset": cell["dataset_label"],
        "method": cell["method_label"],
        "method_name": cell["method_name"],
        "budget": cell["budget"],
        "seed": cell["seed"],
        "adjacency": privacy.get("adjacency"),
        **{key: audit.get(key) for key in _FROM_AUDIT_FILE},
        "run_dir": str(folder),
    }


def load_audits(store: str | Path) -> Any:
    """Every audited run of ``store``, read from its folders (the truth), as a DataFrame.

    Args:
        store: the results store.

    Returns:
        A DataFrame with :data:`AUDIT_COLUMNS` (empty when the store has no audits).
    """
    import pandas as pd

    rows = [audit_row(folder) for folder in folders.iter_audit_dirs(Path(store))]
    return pd.DataFrame(rows, columns=list(AUDIT_COLUMNS))
