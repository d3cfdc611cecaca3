"""``isoeps cache dir|ls|clear|export|import``: the cache root, what is in it, and bundles of
public models and evaluators with their model cards (:mod:`isoeps.cache_bundle`)."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser("cache", help="show or clear the isoeps cache")
    actions = parser.add_subparsers(dest="cache_command", metavar="ACTION", required=True)
    actions.add_parser("dir", parents=[parent], help="print the cache root").set_defaults(
        handler=_dir
    )
    actions.add_parser("ls", parents=[parent], help="list cached artefacts").set_defaults(
        handler=_ls
    )
    clear = actions.add_parser("clear", parents=[parent], help="delete cached artefacts")
    clear.add_argument(
        "--kind",
        help="only this kind (datasets, evaluators, public-models, "
        "reference-features, weights); default: everything",
    )
    from isoeps.cli._common import add_yes_flag

    add_yes_flag(clear)
    clear.set_defaults(handler=_clear)
    export = actions.add_parser(
        "export",
        parents=[parent],
        help="copy public models and evaluators, with model cards, into a bundle folder",
    )
    export.add_argument(
        "bundle", help="the bundle folder (created; entries exported there before are replaced)"
    )
    export.add_argument(
        "--kind",
        action="append",
        help="only this kind (evaluators, public-models, reference-features); repeatable",
    )
    export.add_argument("--key", action="append", help="only this entry key; repeatable")
    export.add_argument(
        "--metrics-from",
        metavar="RESULTS",
        help="a results store: each public model's card quotes the metrics of the store's "
        "`public` cells that ran on it",
    )
    export.set_defaults(handler=_export)
    load = actions.add_parser(
        "import",
        parents=[parent],
        help="check a bundle's sha256 sums and copy its entries into the cache",
    )
    load.add_argument("bundle", help="a folder written by `isoeps cache export`")
    load.set_defaults(handler=_import)


def _dir(args: argparse.Namespace) -> int:
    from isoeps import cache
    from isoeps.cli._common import emit

    root = cache.cache_dir()
    emit(args, {"cache_dir": str(root)}, str(root))
    return 0


def _ls(args: argparse.Namespace) -> int:
    from isoeps import cache
    from isoeps.cli._common import emit

    rows = cache.entries()
    lines = [f"{r['kind']:<20} {r['key']:<40} {r['bytes'] / 1e6:10.1f} MB" for r in rows]
    total = sum(r["bytes"] for r in rows)
    lines.append(f"total: {total / 1e6:.1f} MB in {cache.cache_dir()}")
    emit(args, {"cache_dir": str(cache.cache_dir()), "entries": rows}, "\n".join(lines))
    return 0


def _clear(args: argparse.Namespace) -> int:
    import sys

    from isoeps import cache
    from isoeps.cli._common import confirm, emit

    target = cache.clear_target(args.kind)  # checked: a known kind, a root isoeps marked
    if not target.exists():
        emit(args, {"freed_bytes": 0}, "freed 0.0 MB")
        return 0
    size = sum(
        row["bytes"] for row in cache.entries() if args.kind is None or row["kind"] == args.kind
    )
    what = f"delete the {args.kind} cache" if args.kind else "delete the whole cache"
    if not confirm(args, f"{what} ({size / 1e6:.1f} MB) in {target}"):
        print("nothing deleted", file=sys.stderr)
        return 1
    freed = cache.clear(args.kind)
    emit(args, {"freed_bytes": freed}, f"freed {freed / 1e6:.1f} MB")
    return 0


def _export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from isoeps.cache_bundle import export_entries
    from isoeps.cli._common import emit
    from isoeps.errors import ConfigError
    from isoeps.results import public_cells

    scores = public_cells(args.metrics_from) if args.metrics_from else None
    cards = export_entries(Path(args.bundle), kinds=args.kind, keys=args.key, public_metrics=scores)
    if args.key and len(cards) < len(set(args.key)):
        missing = sorted(set(args.key) - {card["key"] for card in cards})
        raise ConfigError(f"cache export: no cache entry has key(s) {missing}")
    size = sum(meta["bytes"] for card in cards for meta in card["files"].values())
    lines = [f"{card['kind']:<20} {card['key']}" for card in cards]
    lines.append(f"exported {len(cards)} entries ({size / 1e6:.1f} MB) to {args.bundle}")
    emit(args, {"bundle": args.bundle, "cards": cards}, "\n".join(lines))
    return 0


def _import(args: argparse.Namespace) -> int:
    from pathlib import Path

    from isoeps.cache_bundle import import_entries
    from isoeps.cli._common import emit

    cards = import_entries(Path(args.bundle))
    lines = [f"{card['kind']:<20} {card['key']}" for card in cards]
    lines.append(f"imported {len(cards)} new entries (sha256 checked) from {args.bundle}")
    emit(args, {"bundle": args.bundle, "imported": cards}, "\n".join(lines))
    return 0
