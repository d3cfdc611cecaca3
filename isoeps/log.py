"""Logging and progress bars, following the CLI conventions.

Logs and tqdm bars go to stderr, so ``--json`` output on stdout stays clean. Bars are off when
stderr is not a TTY or ``CI=true``. The level comes from ``-v``/``-q`` or ``ISOEPS_LOG_LEVEL``.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable
from typing import Any, TypeVar

T = TypeVar("T")

LOG_LEVEL_ENV = "ISOEPS_LOG_LEVEL"


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name if name.startswith("isoeps") else f"isoeps.{name}")


def setup_logging(verbosity: int = 0) -> None:
    """Configure the ``isoeps`` logger. ``verbosity`` is (#-v) - (#-q); the env var wins at 0."""
    env_level = os.environ.get(LOG_LEVEL_ENV)
    if verbosity == 0 and env_level:
        level = logging.getLevelName(env_level.upper())
        if not isinstance(level, int):
            level = logging.INFO
    else:
        level = {-2: logging.ERROR, -1: logging.WARNING, 0: logging.INFO}.get(
            verbosity, logging.DEBUG if verbosity > 0 else logging.ERROR
        )
    logger = logging.getLogger("isoeps")
    logger.setLevel(level)
    if not any(getattr(h, "_isoeps", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler._isoeps = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.propagate = False


def progress_enabled() -> bool:
    if os.environ.get("CI", "").lower() == "true":
        return False
    return sys.stderr.isatty()


def progress(iterable: Iterable[T] | None = None, **kwargs: Any) -> Any:
    """A tqdm bar on stderr, disabled off-TTY and under CI."""
    from tqdm.auto import tqdm

    kwargs.setdefault("disable", not progress_enabled())
    kwargs.setdefault("file", sys.stderr)
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, **kwargs)
