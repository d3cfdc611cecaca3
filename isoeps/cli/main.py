"""The ``isoeps`` command line.

Each module in :mod:`isoeps.cli` that defines ``add_parser(subparsers, parent)`` contributes a
command group. Modules import only the standard library at import time; heavy imports happen
inside the handlers, so ``isoeps --help`` never imports torch.

Exit codes: 0 ok; 1 cells failed; 2 usage or config error; 3 regression.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

import isoeps
from isoeps.cli import _common
from isoeps.errors import IsoepsError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_REGRESSION = 0, 1, 2, 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="isoeps",
        description="Compare differentially private image generators at equal epsilon.",
    )
    parser.add_argument("--version", action="version", version=f"isoeps {isoeps.__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    parent = _common.common_parent()
    import isoeps.cli as cli_package

    for info in sorted(pkgutil.iter_modules(cli_package.__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.name == "main":
            continue
        module = importlib.import_module(f"isoeps.cli.{info.name}")
        add_parser = getattr(module, "add_parser", None)
        if add_parser is not None:
            add_parser(subparsers, parent)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        # The main job: run the quick suite (once the run command exists).
        argv = ["run"] if "run" in parser._subparsers._group_actions[0].choices else ["--help"]
    args, extras = parser.parse_known_args(argv)
    # argparse stops filling positionals once an option intervenes, so `run quick --jobs 2
    # key=value` leaves the override over: it is as good as `--set key=value`.
    overrides = [token for token in extras if "=" in token and not token.startswith("-")]
    if overrides and isinstance(getattr(args, "set", None), list):
        args.set.extend(overrides)
        extras = [token for token in extras if token not in overrides]
    if extras:
        parser.error(f"unrecognized arguments: {' '.join(extras)}")
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.parse_args([*argv, "--help"])
        return EXIT_USAGE
    _common.setup_from_args(args)
    try:
        return int(handler(args) or EXIT_OK)
    except (IsoepsError, ValueError, FileNotFoundError) as exc:
        if getattr(args, "verbose", 0) > 1:
            raise
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"isoeps {args.command}: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("isoeps: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away: stop quietly, as Unix tools do.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
