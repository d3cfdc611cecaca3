"""Executors run cell payloads and yield their outcomes; the driver writes the index.

Each executor is registered under ``isoeps.executors`` (``local``, ``ray``, ``slurm``) and
built by :func:`create_executor` from a suite's ``runtime``.
"""

from __future__ import annotations

from typing import Any

from isoeps import registry


def create_executor(runtime: Any) -> Any:
    """The executor named by ``runtime.executor``.

    Args:
        runtime: the suite's :class:`~isoeps.bench.spec.RuntimeSpec` (``executor``, ``jobs``,
            ``resources`` and ``executor_options``, validated by the executor's options model).

    Returns:
        An executor whose ``map(fn, payloads)`` yields outcomes.
    """
    from isoeps.errors import ConfigError

    try:
        executor_class = registry.get("isoeps.executors", runtime.executor)
    except (ConfigError, ImportError) as exc:
        raise ConfigError(f"runtime.executor: {exc}") from None
    return executor_class(
        jobs=runtime.jobs, resources=runtime.resources, **runtime.executor_options
    )
