"""``isoeps cache dir|ls|clear``: the cache root and what is in it."""

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
