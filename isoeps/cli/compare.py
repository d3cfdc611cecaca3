"""``isoeps compare A B --metric M [--at eps=E]``: A − B at equal ε, paired seed by seed."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "compare",
        parents=[parent],
        help="A − B for one metric at equal ε: difference, 95%% CI, p-value, test and n",
        description=(
            "Pairs A's and B's cells seed by seed (same dataset, seed, ε, adjacency and n) and "
            "prints, per ε, the mean difference A − B, its 95%% CI, the p-value (raw and "
            "Holm-adjusted across the ε shown), the test used (the paired t-test; with one "
            "seed, the values' own CIs combined) and the n of paired seeds."
        ),
    )
    parser.add_argument("a", metavar="A", help="a method label in the store")
    parser.add_argument("b", metavar="B", help="another method label")
    parser.add_argument("--metric", required=True, help="the metric name, e.g. kid")
    parser.add_argument(
        "--at", metavar="eps=E", help="compare only at this ε (a number, inf or public)"
    )
    parser.add_argument("--results", default="results", help="the store folder")
    parser.set_defaults(handler=_compare)


def parse_at(text: str | None) -> str | None:
    """The ε of ``--at eps=E``; None without ``--at``.

    Args:
        text: the option's value.

    Returns:
        ``E`` as written.

    Raises:
        ValueError: ``text`` is not ``eps=E`` with E a number, ``inf`` or ``public``.
    """
    if text is None:
        return None
    key, sep, value = text.partition("=")
    valid = value in ("inf", "public")
    if not valid:
        try:
            float(value)
            valid = True
        except ValueError:
            pass
    if key.strip() not in ("eps", "epsilon", "ε") or not sep or not valid:
        raise ValueError(f"--at: expected eps=E (e.g. eps=1, eps=inf), got {text!r}")
    return value


def _compare(args: argparse.Namespace) -> int:
    from isoeps.cli._common import emit
    from isoeps.results import load
    from isoeps.results.compare import compare_methods, format_comparisons

    epsilon = parse_at(args.at)
    rows = compare_methods(
        load(args.results), a=args.a, b=args.b, metric=args.metric, epsilon=epsilon
    )
    payload = {"a": args.a, "b": args.b, "metric": args.metric, "rows": rows}
    emit(args, payload, format_comparisons(rows, a=args.a, b=args.b))
    return 0
