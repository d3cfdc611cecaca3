"""Store-level operations: load, merge and export."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from isoeps.results import folders, index
from isoeps.results.frame import (
    CELL_COLUMNS,
    Verify,
    cell_row,
    rows_from_folders,
    to_frame,
    with_columns,
)


def load(path: str | Path, verify: Verify | None = None) -> Any:
    """The tidy DataFrame of a store: one row per (cell, metric), finished cells only.

    ``path`` is a store folder (read from its run folders, the truth), an ``index.sqlite``,
    or a ``.parquet``/``.csv`` export (a column added since it was written reads as None).
    ``verify`` (store folders only) fills ``verified``.

    Args:
        path: see above.
        verify: ``folder -> None | reason``; None for no check.

    Returns:
        The DataFrame.

    Raises:
        FileNotFoundError: ``path`` is none of these.
    """
    path = Path(path)
    if path.is_dir():
        if not folders.runs_dir(path).is_dir():
            raise FileNotFoundError(f"{path} is not a results store (no {folders.RUNS}/ folder)")
        return to_frame(rows_from_folders(path, verify))
    if path.suffix in (".sqlite", ".db"):
        return index.read(path)
    if path.suffix == ".parquet":
        import pandas as pd

        return with_columns(pd.read_parquet(path))
    if path.suffix == ".csv":
        import pandas as pd

        return with_columns(pd.read_csv(path))
    raise FileNotFoundError(f"not a results store, index, parquet or csv file: {path}")


def load_cells(store: str | Path, verify: Verify | None = None) -> Any:
    """One row per run folder (any status): cell id, status, reason, achieved epsilon...

    Args:
        store: the results store.
        verify: ``folder -> None | reason``; None for no check.

    Returns:
        A DataFrame with :data:`CELL_COLUMNS`.
    """
    return to_frame([cell_row(f, verify) for f in folders.iter_run_dirs(Path(store))], CELL_COLUMNS)


def merge(
    target: str | Path, sources: list[str | Path], verify: Verify | None = None
) -> dict[str, Any]:
    """Copy run folders from ``sources`` into ``target`` and reindex it.

    A finished folder is never overwritten; an unfinished or failed one is replaced by a
    finished copy from a source. With ``verify`` (``folder -> None | reason``), a finished
    source folder whose privacy record does not re-account is not copied (``refused``, with
    its reason in ``unverified``), and the target is reindexed with the same check. Returns
    counts of copied, skipped and refused folders. Takes the target store's lock, so it is
    refused while a run drives that store.

    Args:
        target: the store copied into.
        sources: the stores copied from.
        verify: see above; None for no check.

    Returns:
        ``copied``, ``skipped`` and ``refused`` counts and ``unverified`` reasons.

    Raises:
        LockHeldError: a run holds the target store's lock.
    """
    target = Path(target)
    with folders.store_lock(target, command="isoeps results merge"):
        return _merge(target, sources, verify)


def _merge(target: Path, sources: list[str | Path], verify: Verify | None = None) -> dict[str, Any]:
    copied = skipped = 0
    unverified: list[dict[str, str]] = []
    for source in sources:
        for folder in folders.iter_run_dirs(Path(source)):
            status = folders.status_of(folder)
            destination = folders.runs_dir(target) / folder.name
            existing = folders.status_of(destination) if destination.exists() else None
            if status is None or (existing and existing.get("status") == folders.FINISHED):
                skipped += 1
                continue
            if existing and status.get("status") != folders.FINISHED:
                skipped += 1
                continue
            reason = (
                verify(folder)
                if verify is not None and status.get("status") == folders.FINISHED
                else None
            )
            if reason is not None:
                unverified.append({"run": folder.name, "source": str(source), "reason": reason})
                continue
            staging = destination.with_name(f".{destination.name}.merging")
            shutil.rmtree(staging, ignore_errors=True)
            shutil.copytree(folder, staging)
            if destination.exists():
                shutil.rmtree(destination)
            staging.rename(destination)
            copied += 1
    index.reindex(target, verify)
    return {
        "copied": copied,
        "skipped": skipped,
        "refused": len(unverified),
        "unverified": unverified,
    }


def export_table(store: str | Path, out: str | Path, *, fmt: str) -> Path:
    """Write the tidy frame as ``parquet`` or ``csv``.

    Args:
        store: a store, index or export, as :func:`load` reads.
        out: the file to write; its folder is created.
        fmt: ``parquet`` or ``csv``.

    Returns:
        ``out``, as a ``Path``.

    Raises:
        ValueError: ``fmt`` is neither.
    """
    frame = load(store)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        frame.to_parquet(out, index=False)
    elif fmt == "csv":
        frame.to_csv(out, index=False)
    else:
        raise ValueError(f"--format must be parquet, csv or dpimagebench, got {fmt!r}")
    return out


def finished_samples(
    store: str | Path, *, file: str = folders.SAMPLES
) -> list[tuple[dict[str, Any], Path]]:
    """(cell.json content, path of ``file``) for every finished cell that kept that file:
    the prompted samples by default, or :data:`folders.OPEN_PROMPT_SAMPLES`.

    Args:
        store: the results store.
        file: the run folder's file to look for.

    Returns:
        ``(cell, path)`` pairs, in run folder order.
    """
    out = []
    for folder in folders.iter_run_dirs(Path(store)):
        status = folders.status_of(folder)
        samples = folder / file
        if status and status.get("status") == folders.FINISHED and samples.is_file():
            out.append((folders.read_json(folder / folders.CELL), samples))
    return out


def public_cells(store: str | Path) -> dict[str, list[dict[str, Any]]]:
    """The ``public`` cells of a results store, by the public-model key each ran on.

    A public model's card quotes them (``isoeps cache export --metrics-from``): what the
    checkpoint alone scores against its suite's reference split, with each value's spread and
    n as the store holds them.

    Args:
        store: a results store.

    Returns:
        ``{key: [{suite, dataset, method, seed, n_samples, cell_id, metrics}]}``, where
        ``metrics`` maps each metric to its value, std, CI, n and backbone.

    Raises:
        FileNotFoundError: ``store`` is not a results store.
    """
    frame = load(store)
    scores: dict[str, list[dict[str, Any]]] = {}
    for run_dir, rows in frame[frame["budget"] == "public"].groupby("run_dir", sort=True):
        privacy = folders.read_json(Path(run_dir) / folders.PRIVACY)
        first = rows.iloc[0]
        cell = {
            "suite": first["suite"],
            "dataset": first["dataset"],
            "method": first["method"],
            "seed": int(first["seed"]),
            "n_samples": int(first["n_samples"]),
            "cell_id": first["cell_id"],
            "metrics": {
                row["metric"]: {
                    field: row[field] for field in ("value", "std", "ci_low", "ci_high", "n")
                }
                | {"backbone": row["backbone"]}
                for _, row in rows.iterrows()
            },
        }
        scores.setdefault(privacy["public_model_key"], []).append(folders.jsonable(cell))
    return scores
