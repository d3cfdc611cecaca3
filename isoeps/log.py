"""Logging and progress bars, following the CLI conventions.

Logs and tqdm bars go to stderr, so ``--json`` output on stdout stays clean. Bars are off when
stderr is not a TTY or ``CI=true``; there, a loop that does not log its own progress becomes
one log line every :data:`OFF_TERMINAL_INTERVAL_S` seconds instead. The level comes from
``-v``/``-q`` or ``ISOEPS_LOG_LEVEL``.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

LOG_LEVEL_ENV = "ISOEPS_LOG_LEVEL"


@dataclasses.dataclass
class _RunningCell:
    name: str
    started: float
    phase: str = ""


#: The running cell (its position and name, start time and phase), for every console line.
_CELL: contextvars.ContextVar[_RunningCell | None] = contextvars.ContextVar(
    "isoeps_cell", default=None
)
#: The run's latest estimate of the time left, set by the driver after each cell.
_RUN_ETA: list[str] = [""]


@contextlib.contextmanager
def cell_context(name: str) -> Iterator[None]:
    """Tag every console log line inside with the cell and the time spent in it, e.g.
    ``[cell 3/12 wavelet-two-stage eps=1 s0: fit, 4 min in]``: a newcomer reading a piped or
    CI log sees which cell and phase a step count belongs to."""
    token = _CELL.set(_RunningCell(name, time.time()))
    try:
        yield
    finally:
        _CELL.reset(token)


def set_phase(phase: str) -> None:
    """The running cell's phase (``"public models"``, ``"fit"``, ``"sampling"``,
    ``"metrics"``), shown in its later lines' tags; nothing outside a cell."""
    cell = _CELL.get()
    if cell is not None:
        cell.phase = phase


def set_run_eta(text: str) -> None:
    """The run's time left (``"about 20 min left"``), shown in later cells' tags; ``""`` for
    none. Cells in worker processes (``--jobs``) do not see it; the driver's lines do."""
    _RUN_ETA[0] = text


def duration_text(seconds: float) -> str:
    """``"40 s"``, ``"12 min"`` or ``"1 h 5 min"``."""
    if seconds < 59.5:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"


class _CellFormatter(logging.Formatter):
    """The console format, with the running cell's tag before the message."""

    def format(self, record: logging.LogRecord) -> str:
        cell = _CELL.get()
        record.cell_tag = ""
        if cell is not None:
            where = f"{cell.name}: {cell.phase}" if cell.phase else cell.name
            parts = [f"{where}, {duration_text(time.time() - cell.started)} in"]
            if _RUN_ETA[0]:
                parts.append(f"run: {_RUN_ETA[0]}")
            record.cell_tag = f"[{'; '.join(parts)}] "
        return super().format(record)


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
        handler.setFormatter(
            _CellFormatter("%(asctime)s %(levelname)s %(name)s: %(cell_tag)s%(message)s")
        )
        handler._isoeps = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.propagate = False


def progress_enabled() -> bool:
    if os.environ.get("CI", "").lower() == "true":
        return False
    return sys.stderr.isatty()


#: Seconds between the log lines of a progress bar off a terminal (under CI, piped).
OFF_TERMINAL_INTERVAL_S = 30.0


class _BarToLog:
    """A file for tqdm off a terminal: each refresh of the bar becomes one INFO log line (so
    it carries the running cell's tag); the blank refresh of a closing bar is dropped."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger

    def write(self, text: str) -> int:
        line = text.strip("\r\n ")
        if line:
            self.logger.info(line)
        return len(text)

    def flush(self) -> None:
        pass


def _log_bar_class() -> type:
    """Plain tqdm (no notebook widget for a log file) without its monitor thread, whose
    refreshes would log a second line, without the running cell's tag (another thread)."""
    from tqdm import tqdm as plain_tqdm

    return type("LogBar", (plain_tqdm,), {"monitor_interval": 0})


def progress(
    iterable: Iterable[T] | None = None, *, log_off_terminal: bool = True, **kwargs: Any
) -> Any:
    """A tqdm bar on stderr. Off a terminal or under CI, a loop whose caller did not disable it
    logs its bar every :data:`OFF_TERMINAL_INTERVAL_S` s instead, unless ``log_off_terminal`` is
    False (for loops that log their own progress)."""
    from tqdm.auto import tqdm

    if "disable" not in kwargs and not progress_enabled():
        if not log_off_terminal:
            kwargs["disable"] = True
        else:
            kwargs.update(
                file=_BarToLog(get_logger("progress")),
                mininterval=OFF_TERMINAL_INTERVAL_S,
                ascii=True,
                ncols=80,
                disable=False,
            )
            return _log_bar_class()(iterable, **kwargs)
    kwargs.setdefault("disable", not progress_enabled())
    kwargs.setdefault("file", sys.stderr)
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, **kwargs)
