"""``isoeps regress --baseline FILE``: gate the store on KID and attribute metrics.

A regression is a change outside the baseline value's own CI where the baseline records one,
else outside its tolerance (``--by tolerance`` uses the tolerances only; ``--tolerance``
overrides a metric's gate)."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "regress",
        parents=[parent],
        help="compare the store with a committed baseline",
        description=(
            "Exit 0 when every gated metric is within its gate, 3 on a regression. The gate "
            "is the baseline value's own 95%% CI where the baseline records one, else its "
            "tolerance (3 stds over >= 5 seeds, or given)."
        ),
    )
    parser.add_argument("--baseline", required=True, help="the baseline JSON file")
    parser.add_argument("--results", default="results", help="the store folder")
    parser.add_argument(
        "--tolerance",
        action="append",
        default=[],
        metavar="metric=abs:X|rel:X",
        help="gate a metric on this tolerance instead (repeatable)",
    )
    parser.add_argument(
        "--by",
        choices=("ci", "tolerance"),
        default="ci",
        help="ci: an entry's CI where it has one, else its tolerance (default); tolerance: "
        "the recorded tolerances only",
    )
    parser.add_argument(
        "--write-baseline",
        action="store_true",
        help="write FILE from the store (tolerances from the spread over seeds)",
    )
    parser.add_argument(
        "--gate", default="kid,attr", help="comma-separated metric names or groups to gate on"
    )
    parser.add_argument("--seed", type=int, help="the fixed seed for --write-baseline")
    parser.set_defaults(handler=_regress)


def _regress(args: argparse.Namespace) -> int:
    from isoeps.cli._common import emit
    from isoeps.results import load
    from isoeps.results.regress import (
        FAILING,
        Tolerance,
        compare,
        format_comparison,
        load_baseline,
        write_baseline,
    )

    tolerances = dict(Tolerance.parse(t) for t in args.tolerance)
    frame = load(args.results)
    if args.write_baseline:
        gates = tuple(g.strip() for g in args.gate.split(",") if g.strip())
        baseline = write_baseline(
            frame, args.baseline, gates=gates, seed=args.seed, tolerances=tolerances
        )
        emit(
            args,
            baseline,
            f"wrote {args.baseline}: {len(baseline['entries'])} gated value(s) "
            f"at seed {baseline['seed']}",
        )
        return 0
    rows = compare(frame, load_baseline(args.baseline), tolerances=tolerances, by=args.by)
    failed = [r for r in rows if r["verdict"] in FAILING]
    emit(args, {"rows": rows, "regressed": len(failed)}, format_comparison(rows))
    return 3 if failed else 0
