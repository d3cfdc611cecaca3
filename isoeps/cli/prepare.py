"""``isoeps prepare SUITE``: train and cache every public model of a suite once."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "prepare",
        parents=[parent],
        help="pretrain and cache a suite's public models",
    )
    from isoeps.cli.run import add_suite_arguments

    add_suite_arguments(parser)
    parser.add_argument("--device", help="cpu or cuda")
    parser.add_argument(
        "--retrain",
        action="store_true",
        help="train from the code what the cache lacks, ignoring the shipped checkpoints "
        "(with a fresh ISOEPS_CACHE_DIR: rebuild them all; see `make zoo`)",
    )
    parser.set_defaults(handler=_prepare)


def _prepare(args: argparse.Namespace) -> int:
    from isoeps.bench.cells import expand
    from isoeps.bench.prepare import prepare_suite
    from isoeps.cli._common import check_device, emit
    from isoeps.cli.run import suite_from_args

    if args.retrain:
        import os

        from isoeps.cache_bundle import ENV_VAR

        os.environ[ENV_VAR] = "0"
    spec, _ = suite_from_args(args, device=args.device)
    check_device(spec.runtime.device)
    rows = prepare_suite(expand(spec), device=spec.runtime.device)
    emit(
        args,
        {"public_models": rows},
        "\n".join(f"{r['dataset']} {r['method']}: {r['key']} ({r['seconds']:.1f}s)" for r in rows),
    )
    return 0
