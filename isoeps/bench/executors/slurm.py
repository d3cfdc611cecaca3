"""The SLURM executor, through submitit: the cells become one SLURM job array.

Each job runs its cell into a node-local temporary folder and returns the folder's files
through submitit's result pickle; the driver writes them into the store
(:mod:`isoeps.bench.executors.transfer`), so compute nodes never write the store or its
SQLite index. submitit's own folder (job pickles and logs, ``<store>/slurm`` by default) must
be on a filesystem the nodes share. ``cluster="local"`` (subprocesses on this machine) and
``"debug"`` (in this process) run without SLURM.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
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

log = get_logger("bench.slurm")

#: submitit always sets a time limit; without ``runtime.resources.time_limit_min`` cells get this.
DEFAULT_TIME_LIMIT_MIN = 24 * 60


def import_submitit() -> Any:
    """``submitit``, or an error that says how to install it."""
    try:
        import submitit
    except ImportError as exc:
        raise IsoepsError(
            f"--executor slurm needs submitit, which is not installed ({exc}): "
            "pip install 'isoeps[slurm]'"
        ) from None
    return submitit


def job_parameters(
    resources: ResourcesSpec,
    *,
    jobs: int,
    partition: str | None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """submitit ``update_parameters`` keywords for one cell per job.

    ``jobs > 1`` caps the array at that many cells at once; ``jobs == 1`` (the default)
    leaves it to the scheduler.

    Args:
        resources: one cell's resources (whole GPUs only).
        jobs: the most cells running at once; 1 for no cap.
        partition: the SLURM partition; None for the default.
        extra: further keywords, applied last.

    Returns:
        The keywords.

    Raises:
        ConfigError: a fractional GPU count.
    """
    if resources.gpus != int(resources.gpus):
        raise ConfigError(f"runtime.resources.gpus={resources.gpus:g}: SLURM allocates whole GPUs")
    parameters: dict[str, Any] = {
        "name": "isoeps-cell",
        "timeout_min": math.ceil(resources.time_limit_min or DEFAULT_TIME_LIMIT_MIN),
        "cpus_per_task": resources.cpus,
        "mem_gb": float(resources.memory_gb),
        "nodes": 1,
        "tasks_per_node": 1,
    }
    if resources.gpus:
        parameters["gpus_per_node"] = int(resources.gpus)
    if partition:
        parameters["slurm_partition"] = partition
    if jobs > 1:
        parameters["slurm_array_parallelism"] = jobs
    parameters.update(extra or {})
    return parameters


class SlurmExecutor:
    """Cells as a SLURM job array (submitit's ``AutoExecutor``).

    ``cluster``: None detects SLURM (or falls back to local subprocesses); ``"local"`` and
    ``"debug"`` force submitit's fallbacks. ``folder``: submitit's job folder (default
    ``<store>/slurm``). ``max_retries``: how many times a job that died without a result
    (killed, out of memory, node failure) is resubmitted before its cell is reported failed.
    ``slurm_options``: more ``update_parameters`` keywords (``slurm_account``, ...).
    """

    name = "slurm"

    class Options(ExecutorOptions):
        cluster: str | None = None
        folder: Path | None = None
        partition: str | None = None
        max_retries: int = Field(default=1, ge=0)
        poll_s: float = Field(default=10.0, gt=0)
        slurm_options: dict[str, Any] | None = None

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
        self.parameters = job_parameters(
            self.resources,
            jobs=self.jobs,
            partition=self.options.partition,
            extra=self.options.slurm_options,
        )

    def _executor(self, submitit: Any, payloads: list[dict[str, Any]]) -> Any:
        # run folders are <store>/runs/<slug>
        folder = (
            Path(self.options.folder)
            if self.options.folder
            else Path(payloads[0]["folder"]).parents[1] / "slurm"
        )
        # absolute: jobs may start in another working directory
        executor = submitit.AutoExecutor(
            folder=folder.absolute() / "%j", cluster=self.options.cluster
        )
        executor.update_parameters(**self.parameters)
        return executor

    def map(self, fn: Callable[[Any], Any], payloads: Iterable[Any]) -> Iterator[tuple[Any, Any]]:
        """Yield ``(payload, result)`` as jobs finish; ``result`` is the exception when the job
        died ``max_retries + 1`` times or raised. An interrupted driver cancels what is left.

        Args:
            fn: the picklable cell function, run through :func:`run_away`.
            payloads: one payload per cell.

        Returns:
            An iterator of ``(payload, result)``.

        Raises:
            IsoepsError: the scheduler refused the job array.
        """
        payloads = list(payloads)
        if not payloads:
            return
        submitit = import_submitit()
        from submitit.core.utils import FailedSubmissionError, UncompletedJobError

        executor = self._executor(submitit, payloads)
        try:
            jobs = executor.map_array(run_away, [fn] * len(payloads), payloads)
        except FailedSubmissionError as exc:
            raise IsoepsError(f"the scheduler refused the job array: {exc}") from None
        pending = {job: (payload, 0) for job, payload in zip(jobs, payloads)}
        log.info("slurm: %d cells submitted (%s)", len(pending), executor.cluster)
        try:
            while pending:
                done = [job for job in pending if job.done()]
                if not done:
                    time.sleep(self.options.poll_s)
                for job in done:
                    payload, retries = pending.pop(job)
                    try:
                        returned = job.result()
                    except UncompletedJobError as exc:
                        if retries < self.options.max_retries:
                            log.warning(
                                "slurm: job %s died (%s); resubmitting",
                                job.job_id,
                                str(exc).splitlines()[0],
                            )
                            pending[executor.submit(run_away, fn, payload)] = (payload, retries + 1)
                            continue
                        yield payload, exc
                        continue
                    except Exception as exc:  # noqa: BLE001 (a failed job fails its cell only)
                        yield payload, exc
                        continue
                    yield payload, land(payload, returned)
        finally:
            for job in pending:
                job.cancel(check=False)
