"""``isoeps report [SUITE]``: tables and figures from the store alone."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "report", parents=[parent], help="write reports/<suite>/ from the store",
        description="Without SUITE, reports every finished cell of the store.",
    )
    from isoeps.cli.run import add_suite_arguments

    add_suite_arguments(parser)
    parser.add_argument("--results", help="the store folder (default: runtime.results)")
    parser.add_argument("--reports", help="output folder (default: reports/<suite>)")
    parser.add_argument("--spec", help="paper.yaml: rows, order, decimals, display names")
    parser.add_argument("--show-private", action="store_true",
                        help="include figures that show private training images")
    parser.set_defaults(handler=_report)


def _report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from isoeps.cli._common import emit
    from isoeps.reports import write_report
    from isoeps.results import load

    ids = None
    if args.items:
        from isoeps.bench.cells import expand
        from isoeps.cli.run import suite_from_args

        spec, _ = suite_from_args(args, results=args.results)
        store, title = Path(spec.runtime.results), spec.name
        ids = {c.cell_id for c in expand(spec, check_roots=False)}
        out = Path(args.reports or spec.runtime.reports or Path("reports") / spec.name)
    else:
        store, title = Path(args.results or "results"), "all results"
        out = Path(args.reports or "reports/all")
    frame = load(store)
    if ids is not None:
        frame = frame[frame["cell_id"].isin(ids)]
    index = write_report(frame, out, title=title, store=store, cell_ids=ids,
                         show_private=args.show_private, spec=args.spec)
    emit(args, {"index": str(index)}, f"wrote {index}")
    return 0
