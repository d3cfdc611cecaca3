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
from isoeps.cpus import quiet_openmp
from isoeps.errors import IsoepsError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_REGRESSION = 0, 1, 2, 3


def build_parser() -> argparse.ArgumentParser:
    return _build()[0]


def command_parsers() -> dict[str, argparse.ArgumentParser]:
    """Each command's parser, by name (``run``, ``cache``...)."""
    return dict(_build()[1])


def _build() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The parser and its commands' parsers (the ``choices`` of its subparsers action)."""
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
    return parser, subparsers.choices


def parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """``argv`` parsed; a command whose positionals may follow its options (``[SUITE]
    [key=value ...]``: see :func:`isoeps.cli._common.positionals_anywhere`) is parsed again by
    its own parser with ``parse_intermixed_args``, so `run quick --jobs 2 seeds=[0,1]` and `run
    --jobs 2 quick` mean what they say (plain argparse fills a positional list only once)."""
    args, extras = parser.parse_known_args(argv)
    command = getattr(args, _common.INTERMIXED, None)
    if extras and command is not None:
        path = command.prog.split()[1:]  # the command's words, e.g. ["config", "show"]
        if argv[: len(path)] == path:  # the top-level parser takes no options of its own
            again = command.parse_intermixed_args(argv[len(path) :])
            return argparse.Namespace(**{**vars(args), **vars(again)})
    if extras:
        parser.error(f"unrecognized arguments: {' '.join(extras)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    # Before any command imports torch: idle OpenMP threads sleep instead of spinning on a
    # shared CPU (isoeps.cpus).
    quiet_openmp()
    parser, commands = _build()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        # The main job: run the default suite, demo (once the run command exists).
        argv = ["run"] if "run" in commands else ["--help"]
    args = parse(parser, argv)
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
