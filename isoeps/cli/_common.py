"""Shared CLI plumbing: the common flags, logging set-up and JSON/text output."""

from __future__ import annotations

import argparse
import json
import math
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


def parse_positive_float(name: str):
    """An argparse type that rejects NaN, inf-like junk and values <= 0, naming the flag."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        if math.isnan(value) or value <= 0:
            raise argparse.ArgumentTypeError(f"{name} must be > 0, got {text!r}")
        return value

    return parse


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
