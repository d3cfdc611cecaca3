"""``isoeps results reindex|merge|export``: the store's index, merging stores, exports."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser("results", help="index, merge and export the result store")
    actions = parser.add_subparsers(dest="results_command", metavar="ACTION", required=True)
    reindex = actions.add_parser(
        "reindex", parents=[parent], help="rebuild index.sqlite from the run folders"
    )
    reindex.add_argument("--results", default="results", help="the store folder")
    reindex.set_defaults(handler=_reindex)
    merge = actions.add_parser(
        "merge", parents=[parent], help="copy run folders of other stores into this one"
    )
    merge.add_argument("sources", nargs="+", help="store folders to merge in")
    merge.add_argument("--results", default="results", help="the target store folder")
    merge.set_defaults(handler=_merge)
    export = actions.add_parser("export", parents=[parent], help="export the tidy table or samples")
    export.add_argument("--format", required=True, choices=["parquet", "csv", "dpimagebench"])
    export.add_argument("--results", default="results", help="the store folder")
    export.add_argument("--out", help="output file (parquet/csv) or folder (dpimagebench)")
    export.set_defaults(handler=_export)


def _reindex(args: argparse.Namespace) -> int:
    """Rebuild the index, re-accounting every private finished cell's ledger.json: a cell
    whose privacy record does not hold is marked (``verified`` false) and listed; exit 1."""
    from pathlib import Path

    from isoeps.bench.verify import verify_run
    from isoeps.cli._common import emit
    from isoeps.results import load_cells, reindex

    count = reindex(args.results, verify_run)
    cells = load_cells(args.results, verify_run)  # the verdicts are cached: no re-accounting
    bad = [
        {"run": Path(row.run_dir).name, "cell_id": row.cell_id, "reason": row.verify_reason}
        for row in cells.itertuples()
        if isinstance(row.verify_reason, str)
    ]
    lines = [f"indexed {count} run folder(s) in {args.results}"]
    lines += [f"unverified (marked in the index): {b['run']}: {b['reason']}" for b in bad]
    emit(args, {"cells": count, "unverified": bad}, "\n".join(lines))
    return 1 if bad else 0


def _merge(args: argparse.Namespace) -> int:
    """Copy run folders in, re-accounting every private finished one first: a folder whose
    privacy record does not hold is not copied (listed; exit 1)."""
    from isoeps.bench.verify import verify_run
    from isoeps.cli._common import emit
    from isoeps.results import merge

    counts = merge(args.results, args.sources, verify_run)
    lines = [
        (
            f"copied {counts['copied']}, skipped {counts['skipped']}, refused "
            f"{counts['refused']} run folder(s)"
        )
    ]
    lines += [
        f"refused (not copied): {u['source']}/{u['run']}: {u['reason']}"
        for u in counts["unverified"]
    ]
    emit(args, counts, "\n".join(lines))
    return 1 if counts["refused"] else 0


def _export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from isoeps.cli._common import emit

    if args.format in ("parquet", "csv"):
        from isoeps.results import export_table

        out = Path(args.out or f"{args.results.rstrip('/')}.{args.format}")
        export_table(args.results, out, fmt=args.format)
        emit(args, {"out": str(out)}, f"wrote {out}")
        return 0
    import numpy as np

    from isoeps.datasets import write_dpimagebench_npz
    from isoeps.results import finished_samples

    root = Path(args.out or "dpimagebench")
    written, unlabelled = [], []
    for _cell, path in finished_samples(args.results):
        target = root / Path(path).parent.name / "gen.npz"
        with np.load(path) as data:
            if "labels" not in data.files:
                unlabelled.append(str(target))
            write_dpimagebench_npz(
                target,
                images=data["images"],
                labels=data["labels"] if "labels" in data.files else None,
                captions=[str(c) for c in data["eval_captions"]],
                channels=int(data["channels"]) if "channels" in data.files else 3,
                padding=int(data["padding"]) if "padding" in data.files else 0,
            )
        written.append(str(target))
    lines = list(written) or ["no finished cells with samples"]
    if unlabelled:
        lines.append(
            f"note: {len(unlabelled)} file(s) from an unconditional source have y = 0 "
            "(no class labels)"
        )
    emit(args, {"files": written, "unlabelled": unlabelled}, "\n".join(lines))
    return 0
