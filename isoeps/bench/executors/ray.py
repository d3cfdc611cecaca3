"""The Ray executor: each cell is a Ray task, with ``num_cpus``/``num_gpus``/``memory`` from the
suite's ``runtime.resources``.

The task runs the cell into a worker-local temporary folder and returns its files; the driver
alone writes the store (:mod:`isoeps.bench.executors.transfer`). Datasets are read by the
workers from their ``root`` paths, so those paths must exist on every node. Before anything
is scheduled, the request is compared with the cluster's nodes: a task that fits no node
would otherwise wait forever.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from pydantic import Field

from isoeps.bench.executors.options import (
    ExecutorOptions,
    as_resources,
    check_jobs,
    parse_options,
)
from isoeps.bench.executors.transfer import land, run_away
from isoeps.bench.spec import ResourcesSpec
from isoeps.errors import ConfigError, IsoepsError
from isoeps.log import get_logger

log = get_logger("bench.ray")

GIB = 1024**3


def import_ray() -> Any:
    """``ray``, or an error that says how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise IsoepsError(
            f"--executor ray needs Ray, which is not installed ({exc}): pip install 'isoeps[ray]'"
        ) from None
    return ray


def task_request(resources: ResourcesSpec) -> dict[str, float]:
    """One cell's request in Ray's resource names (memory in bytes)."""
    return {
        "CPU": float(resources.cpus),
        "GPU": float(resources.gpus),
        "memory": float(resources.memory_gb * GIB),
    }


def _amount(key: str, value: float) -> str:
    if key == "memory":
        return f"{value / GIB:.3g} GiB of memory"
    unit = key if value == 1 else f"{key}s"
    return f"{value:g} {unit}"


_FIELD = {
    "CPU": "runtime.resources.cpus",
    "GPU": "runtime.resources.gpus",
    "memory": "runtime.resources.memory_gb",
}


def check_resources(
    request: dict[str, float],
    nodes: list[dict[str, float]],
    *,
    total: dict[str, float] | None = None,
) -> None:
    """Raise :class:`ConfigError` unless some node can hold one cell's whole ``request``.

    ``nodes`` are the alive nodes' resources (``ray.nodes()``), ``total`` the cluster's
    (``ray.cluster_resources()``), quoted in the message.

    Args:
        request: one cell's resources, by Ray resource name.
        nodes: see above.
        total: see above; None to sum ``nodes``.

    Raises:
        ConfigError: no alive node, or no node has enough of a requested resource.
    """
    total = (
        total
        if total is not None
        else {key: sum(node.get(key, 0.0) for node in nodes) for key in request}
    )
    have = ", ".join(_amount(key, total.get(key, 0.0)) for key in request)
    if not nodes:
        raise ConfigError("the Ray cluster has no alive nodes: start one with `ray start --head`")
    for key, wanted in request.items():
        if wanted <= 0:
            continue
        largest = max(node.get(key, 0.0) for node in nodes)
        if largest >= wanted:
            continue
        if key == "GPU" and largest == 0:
            raise ConfigError(
                f"cells request {_amount(key, wanted)} each but the Ray cluster has no GPU "
                f"resources (it has {have}): run with {_FIELD[key]}=0 or add GPU nodes"
            )
        raise ConfigError(
            f"cells request {_amount(key, wanted)} each but the largest Ray node has "
            f"{_amount(key, largest)} (the cluster has {have}): lower {_FIELD[key]} "
            f"or add larger nodes"
        )
    if not any(
        all(node.get(key, 0.0) >= wanted for key, wanted in request.items()) for node in nodes
    ):
        wants = ", ".join(_amount(key, value) for key, value in request.items() if value > 0)
        raise ConfigError(
            f"cells request {wants} each but no single Ray node has all of them together "
            f"(the cluster has {have}): lower runtime.resources or add larger nodes"
        )


class RayExecutor:
    """Cells as Ray tasks on a local or remote Ray cluster.

    ``address``: None (and no ``RAY_ADDRESS`` in the environment) starts a local cluster
    sized for ``jobs`` cells at once (``num_cpus`` overrides its CPU count); ``"auto"`` joins
    the cluster started on this node with ``ray start``; ``"ray://host:port"`` connects a Ray
    client. An already initialised Ray connection is used as it is (and left running). ``max_retries``: how many times a cell whose worker died is
    run again before it is reported (and recorded) as failed; a cell's own exceptions are
    recorded by the cell and never retried. ``runtime_env`` is Ray's (e.g. ``env_vars`` or
    ``py_modules`` that workers need for a suite's ``imports:``).
    """

    name = "ray"

    class Options(ExecutorOptions):
        address: str | None = None
        max_retries: int = Field(default=2, ge=0)
        num_cpus: int | None = Field(default=None, ge=1)
        runtime_env: dict[str, Any] | None = None

    def __init__(
        self,
        *,
        jobs: int = 1,
        resources: ResourcesSpec | dict[str, Any] | None = None,
        **options: Any,
    ) -> None:
        self.options = parse_options(self.name, self.Options, options)
        self.jobs = check_jobs(jobs)
        self.resources = as_resources(resources)

    def _connect(self, ray: Any) -> bool:
        """Initialise Ray unless it already is; True when this call did (and must shut down)."""
        if ray.is_initialized():
            if self.options.runtime_env:
                log.warning(
                    "ray: already initialised; runtime_env %s is not applied",
                    self.options.runtime_env,
                )
            return False
        address = self.options.address or os.environ.get("RAY_ADDRESS") or None
        options: dict[str, Any] = {
            "runtime_env": self.options.runtime_env,
            "logging_level": logging.WARNING,
        }
        if address is None:
            options.update(
                num_cpus=self.options.num_cpus or self.jobs * self.resources.cpus,
                include_dashboard=False,
            )
        else:
            options["address"] = address
        try:
            ray.init(**options)
        except ConnectionError as exc:
            raise IsoepsError(
                f"cannot connect to the Ray cluster at {address!r}: {exc}. Start it with "
                "`ray start --head` (then `ray start --address HEAD:6379` on the other nodes)"
            ) from None
        return True

    def map(self, fn: Callable[[Any], Any], payloads: Iterable[Any]) -> Iterator[tuple[Any, Any]]:
        """Yield ``(payload, result)`` as tasks complete; ``result`` is the exception when the
        worker died ``max_retries + 1`` times. An interrupted driver cancels what is left.

        Args:
            fn: the picklable cell function, run through :func:`run_away`.
            payloads: one payload per cell.

        Returns:
            An iterator of ``(payload, result)``.

        Raises:
            ConfigError: no node can hold a cell's request.
        """
        payloads = list(payloads)
        if not payloads:
            return
        ray = import_ray()
        started = self._connect(ray)
        pending: dict[Any, Any] = {}
        try:
            request = task_request(self.resources)
            nodes = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
            check_resources(request, nodes, total=ray.cluster_resources())
            task = ray.remote(run_away).options(
                num_cpus=request["CPU"],
                num_gpus=request["GPU"],
                memory=request["memory"],
                max_retries=self.options.max_retries,
                retry_exceptions=False,
                name="isoeps-cell",
            )
            pending = {task.remote(fn, payload): payload for payload in payloads}
            log.info("ray: %d cells scheduled on %s", len(pending), ray.cluster_resources())
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    payload = pending.pop(ref)
                    try:
                        returned = ray.get(ref)
                    except Exception as exc:  # noqa: BLE001 (a dead worker fails its cell only)
                        yield payload, exc
                        continue
                    yield payload, land(payload, returned)
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)
            if started:
                ray.shutdown()
