"""The one registry of pluggable components.

Built-ins and third-party plugins register the same way: as entry points in their
distribution's metadata, under the groups in :data:`GROUPS`. Entry points are loaded only when
a name is looked up, so listing or resolving a name never imports torch. Code that is not
installed (a suite's ``imports:`` list, a test) registers in-process with :func:`register`.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from typing import Any

from isoeps.errors import UnknownNameError

GROUPS: tuple[str, ...] = (
    "isoeps.methods",
    "isoeps.datasets",
    "isoeps.metrics",
    "isoeps.backbones",
    "isoeps.text_encoders",
    "isoeps.executors",
    "isoeps.trackers",
)

_in_process: dict[str, dict[str, Any]] = {group: {} for group in GROUPS}


def _check_group(group: str) -> None:
    if group not in GROUPS:
        raise UnknownNameError(f"unknown registry group {group!r}; known: {', '.join(GROUPS)}")


def _entry_points(group: str) -> dict[str, importlib.metadata.EntryPoint]:
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=group)}


def register(group: str, name: str, obj: Any, *, replace: bool = False) -> Any:
    """Register ``obj`` under ``name`` in ``group`` for this process. Returns ``obj``.

    Args:
        group: the registry group (e.g. ``isoeps.methods``).
        name: the name to register under.
        obj: the class or callable.
        replace: replace an existing in-process entry instead of refusing.

    Returns:
        ``obj``.

    Raises:
        UnknownNameError: ``group`` is not a registry group.
        ValueError: ``name`` is already registered in this process and ``replace`` is false.
    """
    _check_group(group)
    if not replace and name in _in_process[group]:
        raise ValueError(f"{group}: {name!r} is already registered")
    _in_process[group][name] = obj
    return obj


def names(group: str) -> list[str]:
    """All names registered in ``group`` (entry points and in-process), sorted. Loads nothing."""
    _check_group(group)
    return sorted(set(_entry_points(group)) | set(_in_process[group]))


def get(group: str, name: str) -> Any:
    """Load and return the object registered as ``name`` in ``group``.

    In-process registrations come before entry points.

    Args:
        group: the registry group.
        name: the registered name.

    Returns:
        The registered object (an entry point is imported).

    Raises:
        UnknownNameError: ``group`` is not a registry group, or nothing is registered as
            ``name`` in it.
    """
    _check_group(group)
    if name in _in_process[group]:
        return _in_process[group][name]
    entry_points = _entry_points(group)
    if name not in entry_points:
        kind = group.split(".", 1)[1].rstrip("s")
        raise UnknownNameError(
            f"unknown {kind} {name!r}; known: {', '.join(names(group)) or '(none)'}"
        )
    return entry_points[name].load()


def import_modules(modules: list[str]) -> None:
    """Import modules named in a suite's ``imports:`` list, so their ``register`` calls run."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise UnknownNameError(f"imports: cannot import {module!r}: {exc}") from exc
