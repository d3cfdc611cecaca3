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
