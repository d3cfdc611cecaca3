"""The tidy view of a store: one row per (cell, metric) with provenance.

Rows come from finished run folders (the truth). Columns are listed in :data:`COLUMNS`;
``ci_low``/``ci_high`` are the value's own CI when its metric records one (None otherwise,
and in stores written before values had them); ``higher_is_better`` travels with each row so
that reports never import the metrics, and ``adjacency`` with each epsilon (replace-one and
add/remove epsilons are not comparable).

``verified`` is the verdict of a re-accounting of the run's ledger, passed in as ``verify``
(a callable ``folder -> None | reason``, from the bench layer: this package accounts nothing):
``True`` (re-accounted and consistent), ``False`` (``verify_reason`` says why) or ``None``
(not checked, or not a finished cell).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from isoeps.results import folders

#: Columns of the tidy frame, in order.
COLUMNS: tuple[str, ...] = (
    "cell_id",
    "suite",
    "dataset",
    "dataset_name",
    "method",
    "method_name",
    "method_version",
    "budget",
    "epsilon",
    "delta",
    "epsilon_achieved",
    "accountant",
    "adjacency",
    "seed",
    "n_samples",
    "metric",
    "metric_group",
    "metric_version",
    "value",
    "std",
    "ci_low",
    "ci_high",
    "higher_is_better",
    "n",
    "backbone",
    "backbone_sha256",
    "resize",
    "not_dp",
    "secure",
    "isoeps_version",
    "git_commit",
    "device",
    "wall_time_s",
    "peak_memory_mb",
    "run_dir",
    "details",
    "verified",
)

#: One row per cell (any status), for the runner and reports.
CELL_COLUMNS: tuple[str, ...] = (
    "cell_id",
    "suite",
    "dataset",
    "method",
    "method_name",
    "budget",
    "seed",
    "status",
    "reason",
    "epsilon",
    "epsilon_achieved",
    "wall_time_s",
    "run_dir",
    "adjacency",
    "verified",
    "verify_reason",
    "fit_steps",
    "noise_multiplier",
    "sample_rate",
)

#: ``folder -> None`` (its privacy record re-accounts consistently) or the reason it does not.
Verify = Callable[[Path], "str | None"]


def verdict(folder: Path, verify: Verify | None) -> tuple[bool | None, str | None]:
    """(verified, reason) of a finished run folder; (None, None) unchecked or unfinished.

    Args:
        folder: the run folder.
        verify: ``folder -> None | reason``; None for no check.

    Returns:
        ``(True, None)`` when it verifies, ``(False, reason)`` when not.
    """
    status = folders.status_of(folder)
    if verify is None or not status or status.get("status") != folders.FINISHED:
        return None, None
    reason = verify(Path(folder))
    return reason is None, reason


def cell_row(folder: Path, verify: Verify | None = None) -> dict[str, Any]:
    """The cells-table row of one run folder, any status (``incomplete`` when unfinished).

    Args:
        folder: the run folder.
        verify: ``folder -> None | reason``; None for no check (``verified`` is then None).

    Returns:
        ``{column: value}`` for :data:`CELL_COLUMNS`.
    """
    cell = folders.read_json(folder / folders.CELL)
    status = folders.status_of(folder) or {"status": "incomplete"}
    privacy = _maybe(folder / folders.PRIVACY)
    fit = _maybe(folder / folders.FIT)
    verified, reason = verdict(folder, verify)
    return {
        "cell_id": cell["cell_id"],
        "suite": cell.get("suite"),
        "dataset": cell["dataset_label"],
        "method": cell["method_label"],
        "method_name": cell["method_name"],
        "budget": cell["budget"],
        "seed": cell["seed"],
        "status": status["status"],
        "reason": status.get("reason"),
        "epsilon": cell.get("epsilon"),
        "epsilon_achieved": _float(privacy.get("epsilon_achieved")),
        "wall_time_s": status.get("wall_time_s"),
        "run_dir": str(folder),
        "adjacency": privacy.get("adjacency"),
        "verified": verified,
        "verify_reason": reason,
        "fit_steps": fit.get("steps"),
        "noise_multiplier": _float(fit.get("noise_multiplier")),
        "sample_rate": _float(fit.get("sample_rate")),
    }


def metric_rows(folder: Path, verify: Verify | None = None) -> list[dict[str, Any]]:
    """The tidy rows of one finished run folder (none for a failed or unfinished one).

    Args:
        folder: the run folder.
        verify: ``folder -> None | reason``; None for no check (``verified`` is then None).

    Returns:
        One row per metric value: the cell's columns with the value's.
    """
    status = folders.status_of(folder)
    if not status or status.get("status") != folders.FINISHED:
        return []
    verified, _ = verdict(folder, verify)
    cell = folders.read_json(folder / folders.CELL)
    privacy = _maybe(folder / folders.PRIVACY)
    environment = _maybe(folder / folders.ENVIRONMENT)
    metrics = _maybe(folder / folders.METRICS)
    base = {
        "cell_id": cell["cell_id"],
        "suite": cell.get("suite"),
        "dataset": cell["dataset_label"],
        "dataset_name": cell["dataset"]["name"],
        "method": cell["method_label"],
        "method_name": cell["method_name"],
        "method_version": cell["method_version"],
        "budget": cell["budget"],
        "epsilon": cell.get("epsilon"),
        "delta": _float(privacy.get("delta")),
        "epsilon_achieved": _float(privacy.get("epsilon_achieved")),
        "accountant": privacy.get("accountant"),
        "adjacency": privacy.get("adjacency"),
        "seed": cell["seed"],
        "n_samples": cell["n_samples"],
        "secure": bool(cell.get("secure", False)),
        "isoeps_version": environment.get("isoeps_version"),
        "git_commit": environment.get("git_commit"),
        "device": environment.get("device"),
        "run_dir": str(folder),
        "verified": verified,
    }
    rows = []
    for value in metrics.get("values", []):
        rows.append(
            {
                **base,
                "metric": value["name"],
                "metric_group": value.get("metric"),
                "metric_version": str(
                    cell.get("metric_versions", {}).get(value.get("metric"), "1")
                ),
                "value": _float(value["value"]),
                "std": _float(value.get("std")),
                # the value's own CI (bootstrap over samples, KID's subsets, binomial), if any
                "ci_low": _float(value.get("ci_low")),
                "ci_high": _float(value.get("ci_high")),
                "higher_is_better": bool(value["higher_is_better"]),
                "n": value.get("n"),
                "backbone": value.get("backbone"),
                "backbone_sha256": value.get("backbone_sha256"),
                "resize": value.get("resize"),
                "not_dp": bool(value.get("not_dp", False)),
                "wall_time_s": value.get("wall_time_s"),
                "peak_memory_mb": value.get("peak_memory_mb"),
                "details": json.dumps(value.get("details") or {}, sort_keys=True, default=str),
            }
        )
    return rows


def _maybe(path: Path) -> dict[str, Any]:
    return folders.read_json(path) if path.is_file() else {}


def _float(value: Any) -> float | None:
    if value is None:
        return None
    return float(value)  # "inf" strings from JSON become float('inf')


def rows_from_folders(store: Path, verify: Verify | None = None) -> list[dict[str, Any]]:
    """The tidy rows of every finished run folder of ``store``.

    Args:
        store: the results store.
        verify: ``folder -> None | reason``; None for no check.

    Returns:
        The rows of :func:`metric_rows`, folder after folder.
    """
    rows: list[dict[str, Any]] = []
    for folder in folders.iter_run_dirs(store):
        rows.extend(metric_rows(folder, verify))
    return rows


def to_frame(rows: list[dict[str, Any]], columns: tuple[str, ...] = COLUMNS) -> Any:
    """``rows`` as a pandas DataFrame with exactly ``columns``, in that order.

    Args:
        rows: ``{column: value}`` dicts; a missing column is NaN.
        columns: the columns kept.

    Returns:
        The DataFrame.
    """
    import pandas as pd

    return pd.DataFrame(rows, columns=list(columns))


def with_columns(frame: Any, columns: tuple[str, ...] = COLUMNS) -> Any:
    """``frame`` with every one of ``columns`` (an index or export written before a column
    existed lacks it: it reads as None), in that order first.

    Args:
        frame: a DataFrame read from an index or an export.
        columns: the columns it must have.

    Returns:
        The DataFrame, missing columns filled with None.
    """
    missing = [c for c in columns if c not in frame]
    if missing:
        frame = frame.assign(**dict.fromkeys(missing))
    extra = [c for c in frame.columns if c not in columns]
    return frame[[*columns, *extra]]
