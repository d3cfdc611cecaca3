"""``isoeps config show SUITE [overrides]``: the resolved suite (and, with --cells, its cells)."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser("config", help="show a resolved suite")
    actions = parser.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    show = actions.add_parser("show", parents=[parent], help="print the resolved suite as YAML")
    from isoeps.cli.run import add_suite_arguments

    add_suite_arguments(show)
    show.add_argument("--cells", action="store_true", help="also list the expanded cells and ids")
    show.set_defaults(handler=_show)


def _show(args: argparse.Namespace) -> int:
    from isoeps.bench.spec import dump_suite
    from isoeps.cli._common import emit
    from isoeps.cli.run import suite_from_args

    spec, _ = suite_from_args(args)
    payload = {"suite": spec.model_dump(mode="json")}
    text = dump_suite(spec)
    if args.cells:
        from isoeps.bench.cells import expand

        cells = expand(spec, check_roots=False)
        payload["cells"] = [{"cell_id": c.cell_id, "slug": c.slug} for c in cells]
        text += "\n# cells\n" + "\n".join(f"# {c.cell_id}  {c.slug}" for c in cells)
    emit(args, payload, text.rstrip())
    return 0
