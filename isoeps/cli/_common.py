"""Shared CLI plumbing: the common flags, logging set-up and JSON/text output."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def common_parent() -> argparse.ArgumentParser:
    """Flags every command takes: ``--json``, ``-v``/``-q``."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--json", action="store_true", help="print only JSON on stdout (logs go to stderr)"
    )
    parent.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    parent.add_argument("-q", "--quiet", action="count", default=0, help="less logging")
    return parent


def setup_from_args(args: argparse.Namespace) -> None:
    from isoeps.log import setup_logging

    setup_logging(getattr(args, "verbose", 0) - getattr(args, "quiet", 0))


def emit(args: argparse.Namespace, payload: dict[str, Any], text: str) -> None:
    """Print ``payload`` as JSON under ``--json``, else ``text``."""
    if getattr(args, "json", False):
        from isoeps.results.folders import jsonable

        json.dump(jsonable(payload), sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        print(text)


#: The default under which a command's parser says its positionals may follow its options.
INTERMIXED = "intermixed_parser"


def positionals_anywhere(parser: argparse.ArgumentParser) -> None:
    """Let ``parser``'s positionals (a suite and ``key=value`` overrides) stand before, between
    or after its options: :func:`isoeps.cli.main.parse` parses such a command again with
    ``parse_intermixed_args`` when plain parsing leaves positionals over."""
    parser.set_defaults(**{INTERMIXED: parser})


class DeprecatedAlias(argparse.Action):
    """An old spelling of an option: stores into the new one's ``dest``, hidden from --help,
    with a note on stderr that names the new spelling."""

    def __init__(self, option_strings: list[str], dest: str, *, new: str, **kwargs: Any) -> None:
        kwargs.setdefault("default", argparse.SUPPRESS)  # the new spelling's default stands
        super().__init__(option_strings, dest, help=argparse.SUPPRESS, **kwargs)
        self.new = new

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        print(
            f"isoeps: {option_string} is deprecated; use {self.new}",
            file=sys.stderr,
        )
        setattr(namespace, self.dest, values)


def add_deprecated_alias(
    parser: argparse.ArgumentParser, old: str, *, new: str, dest: str, **kwargs: Any
) -> None:
    """Accept ``old`` (hidden from --help) as a deprecated spelling of ``new``."""
    parser.add_argument(old, dest=dest, action=DeprecatedAlias, new=new, **kwargs)


def add_yes_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-y",
        "--yes",
        action="store_true",
        help="delete without asking (needed when stdin is not a terminal)",
    )


def confirm(args: argparse.Namespace, what: str) -> bool:
    """Whether the user agrees to ``what`` (a deletion): ``--yes``, or a ``y`` typed at the
    terminal. Without a terminal and without ``--yes`` it refuses (ConfigError, exit 2)."""
    from isoeps.errors import ConfigError

    if getattr(args, "yes", False):
        return True
    stdin = sys.stdin
    if stdin is None or not stdin.isatty():
        raise ConfigError(f"this would {what}; pass --yes to confirm (stdin is not a terminal)")
    print(f"This will {what}. Continue? [y/N] ", end="", file=sys.stderr, flush=True)
    answer = stdin.readline().strip().lower()
    return answer in ("y", "yes")


def check_device(device: str | None) -> None:
    """Refuse a device this machine does not have before any work starts (ConfigError)."""
    from isoeps.errors import ConfigError

    if not device or device == "cpu":
        return
    import torch

    kind, _, number = device.partition(":")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device {device!r}: CUDA is not available on this machine "
                f"(torch {torch.__version__}); use --device cpu"
            )
        if number and (not number.isdigit() or int(number) >= torch.cuda.device_count()):
            raise ConfigError(
                f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
    elif kind == "mps":
        if not torch.backends.mps.is_available():
            raise ConfigError(f"device {device!r}: MPS is not available on this machine")
    else:
        try:
            torch.device(device)
        except RuntimeError:
            raise ConfigError(
                f"device {device!r} is not a device name (cpu, cuda, cuda:N, mps)"
            ) from None
