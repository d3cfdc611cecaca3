"""Executor options: each executor's ``Options``, a strict pydantic model of the suite's
``runtime.executor_options`` (an unknown or malformed option is an error naming
``runtime.executor_options.<field>``, as metric options name ``metrics.<name>.<field>``), and
the counts and resources every executor takes from ``runtime.jobs`` and ``runtime.resources``."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from isoeps.bench.spec import ResourcesSpec
from isoeps.errors import ConfigError

#: Where executor options live in a suite: error messages name fields under it.
FIELD = "runtime.executor_options"


class ExecutorOptions(BaseModel):
    """Base of every executor's options: unknown fields are an error naming the field, and
    options never change once an executor is built."""

    model_config = ConfigDict(extra="forbid", frozen=True)


Options = TypeVar("Options", bound=ExecutorOptions)


def parse_options(executor: str, model: type[Options], options: dict[str, Any]) -> Options:
    """``options`` validated by ``model``; a ConfigError naming each field at fault otherwise.

    Args:
        executor: the executor's name, for the message.
        model: its options model.
        options: the suite's ``runtime.executor_options``.

    Returns:
        The validated options.

    Raises:
        ConfigError: an option does not validate.
    """
    try:
        return model.model_validate(options)
    except ValidationError as exc:
        raise ConfigError.from_validation(
            exc, model, field=FIELD, owner=f"the {executor} executor"
        ) from None


def check_jobs(jobs: int) -> int:
    """``runtime.jobs`` (``--jobs``): how many cells run at once."""
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"runtime.jobs: --jobs must be >= 1, got {jobs!r}")
    return jobs


def as_resources(resources: ResourcesSpec | dict[str, Any] | None) -> ResourcesSpec:
    if isinstance(resources, ResourcesSpec):
        return resources
    try:
        return ResourcesSpec.model_validate(resources or {})
    except ValidationError as exc:
        raise ConfigError.from_validation(exc, ResourcesSpec, field="runtime.resources") from None
