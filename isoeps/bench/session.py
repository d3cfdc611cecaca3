"""Resolving the suite a command works on: a name or file, ``--from RUN/config.yaml``,
dotlist overrides, and the runtime flags (which never change a cell id)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from isoeps.bench.spec import SuiteSpec, load_suite
from isoeps.errors import ConfigError

DEFAULT_SUITE = "demo"


def split_positionals(items: list[str]) -> tuple[str | None, list[str]]:
    """``[SUITE] [key=value ...]``: the first item without ``=`` is the suite."""
    suite = None
    overrides = []
    for item in items:
        if "=" in item:
            overrides.append(item)
        elif suite is None:
            suite = item
        else:
            raise ConfigError(f"unexpected argument {item!r}: overrides are key=value")
    return suite, overrides


def runtime_overrides(**flags: Any) -> list[str]:
    """Dotlist overrides for the runtime flags that were given (None = not given)."""
    out = []
    for key, value in flags.items():
        if value is None or value is False:
            continue
        text = str(value).lower() if isinstance(value, bool) else str(value)
        out.append(f"runtime.{key}={text}")
    return out


def resolve(
    source: str | None, overrides: list[str], *, from_config: str | None = None
) -> SuiteSpec:
    """The suite to run: ``source`` (or the default suite), or a run folder's ``config.yaml``.

    Args:
        source: a shipped suite's name or a YAML file; None for the default suite.
        overrides: dotlist overrides.
        from_config: a run folder or its ``config.yaml``; None to use ``source``.

    Returns:
        The suite.

    Raises:
        ConfigError: both ``source`` and ``from_config``, or a suite that does not load.
    """
    if from_config:
        if source:
            raise ConfigError("give either a SUITE or --from RUN/config.yaml, not both")
        path = Path(from_config)
        if path.is_dir():
            path = path / "config.yaml"
        return load_suite(path, overrides)
    return load_suite(source or DEFAULT_SUITE, overrides)
