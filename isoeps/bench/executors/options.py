"""Executor options shared by every executor: strict option names, counts and resources."""

from __future__ import annotations

from typing import Any

from isoeps.bench.spec import ResourcesSpec
from isoeps.errors import ConfigError


def check_options(
    executor: str,
    unknown: dict[str, Any],
    *,
    known: tuple[str, ...],
    jobs: int,
    max_retries: int = 0,
) -> None:
    """A misspelt ``runtime.executor_options`` key is an error, not a silent default."""
    if unknown:
        raise ConfigError(
            f"runtime.executor_options: unknown option(s) for the {executor} executor: "
            f"{', '.join(sorted(unknown))}; known: {', '.join(known) or '(none)'}"
        )
    if jobs < 1:
        raise ConfigError(f"--jobs must be >= 1, got {jobs}")
    if max_retries < 0:
        raise ConfigError(f"max_retries must be >= 0, got {max_retries}")


def as_resources(resources: ResourcesSpec | dict[str, Any] | None) -> ResourcesSpec:
    if isinstance(resources, ResourcesSpec):
        return resources
    return ResourcesSpec.model_validate(resources or {})
