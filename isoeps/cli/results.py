"""``isoeps results reindex|merge|export``: the store's index, merging stores, exports."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser("results", help="index, merge and export the result store")
    actions = parser.add_subparsers(dest="results_command", metavar="ACTION", required=True)
    reindex = actions.add_parser("reindex", parents=[parent],
                                 help="rebuild index.sqlite from the run folders")
    reindex.add_argument("--results", default="results", help="the store folder")
    reindex.set_defaults(handler=_reindex)
    merge = actions.add_parser("merge", parents=[parent],
                               help="copy run folders of other stores into this one")
    merge.add_argument("sources", nargs="+", help="store folders to merge in")
    merge.add_argument("--results", default="results", help="the target store folder")
    merge.set_defaults(handler=_merge)
    export = actions.add_parser("export", parents=[parent], help="export the tidy table or samples")
    export.add_argument("--format", required=True, choices=["parquet", "csv", "dpimagebench"])
    export.add_argument("--results", default="results", help="the store folder")
    export.add_argument("--out", help="output file (parquet/csv) or folder (dpimagebench)")
    export.set_defaults(handler=_export)


def _reindex(args: argparse.Namespace) -> int:
    from isoeps.cli._common import emit
    from isoeps.results import reindex

    count = reindex(args.results)
    emit(args, {"cells": count}, f"indexed {count} run folder(s) in {args.results}")
    return 0


def _merge(args: argparse.Namespace) -> int:
    from isoeps.cli._common import emit
    from isoeps.results import merge

    counts = merge(args.results, args.sources)
    emit(args, counts, f"copied {counts['copied']}, skipped {counts['skipped']} run folder(s)")
    return 0


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
    written = []
    for cell, path in finished_samples(args.results):
        data = np.load(path)
        target = root / Path(path).parent.name / "gen.npz"
        target.parent.mkdir(parents=True, exist_ok=True)
        write_dpimagebench_npz(target, images=data["images"],
                               captions=[str(c) for c in data["eval_captions"]])
        written.append(str(target))
    emit(args, {"files": written}, "\n".join(written) or "no finished cells with samples")
    return 0
