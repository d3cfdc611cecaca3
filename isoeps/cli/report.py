"""``isoeps report [SUITE]``: tables and figures from the store alone."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "report",
        parents=[parent],
        help="write reports/<suite>/ from the store",
        description="Without SUITE, reports every finished cell of the store.",
    )
    from isoeps.cli.run import add_suite_arguments

    add_suite_arguments(parser)
    parser.add_argument("--results", help="the store folder (default: runtime.results)")
    parser.add_argument("--reports", help="output folder (default: reports/<suite>)")
    parser.add_argument("--spec", help="paper.yaml: rows, order, decimals, display names")
    parser.add_argument(
        "--show-private",
        action="store_true",
        help="include figures that show private training images",
    )
    parser.add_argument(
        "--inf-samples",
        action="store_true",
        help="include the sample grids of `inf` cells (not DP) in the sample "
        "figures, labelled as such",
    )
    parser.set_defaults(handler=_report)


def _report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from isoeps.bench.verify import verify_store
    from isoeps.cli._common import emit
    from isoeps.reports import write_report
    from isoeps.results import load

    ids = None
    notice = ""
    if args.items:
        from isoeps.bench.cells import expand
        from isoeps.cli.run import suite_from_args

        spec, _ = suite_from_args(args, results=args.results)
        store, title, notice = Path(spec.runtime.results), spec.name, spec.notice
        ids = {c.cell_id for c in expand(spec, check_roots=False)}
        out = Path(args.reports or spec.runtime.reports or Path("reports") / spec.name)
    else:
        store, title = Path(args.results or "results"), "all results"
        out = Path(args.reports or "reports/all")
    frame = load(store)
    if ids is not None:
        frame = frame[frame["cell_id"].isin(ids)]
    # every finished cell's ledger.json is re-accounted against its privacy.json and target:
    # what does not hold is left out of every table and figure, and named in the report
    unverified = verify_store(store, set(frame["cell_id"]))
    index = write_report(
        frame,
        out,
        title=title,
        notice=notice,
        store=store,
        cell_ids=ids,
        show_private=args.show_private,
        spec=args.spec,
        unverified=unverified,
        inf_samples=args.inf_samples,
    )
    lines = [f"wrote {index}"]
    lines += [
        f"unverified (left out of the report): {u['run']}: {u['reason']}"
        for u in unverified.values()
    ]
    emit(args, {"index": str(index), "unverified": unverified}, "\n".join(lines))
    return 0
