"""The local executor: cells in sequence, or in ``jobs`` worker processes on this machine."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from isoeps.bench.executors.options import ExecutorOptions, check_jobs, parse_options
from isoeps.results import folders

#: How often a worker's watchdog checks that its driver is still alive (seconds).
WATCHDOG_INTERVAL_S = 0.5


class LocalExecutor:
    """``jobs == 1`` runs in this process; more uses a spawn-based process pool (torch and
    fork do not mix). ``map`` yields ``(payload, result)`` pairs as cells complete; ``result``
    is the exception when the worker itself died (the driver records the cell as failed).

    Each cell runs holding its run folder's lock, so a second writer of the same folder is
    refused. Workers die with their driver: on Linux the kernel kills them when it dies
    (``PR_SET_PDEATHSIG``), and everywhere a watchdog thread exits a worker whose parent is
    gone, so a killed driver leaves no worker finishing cells unindexed."""

    name = "local"

    class Options(ExecutorOptions):
        """None: ``runtime.jobs`` is all there is to say."""

    def __init__(self, *, jobs: int = 1, resources: Any = None, **options: Any) -> None:
        # resources concern remote schedulers: on one machine the cells share what it has
        self.options = parse_options(self.name, self.Options, options)
        self.jobs = check_jobs(jobs)

    def map(self, fn: Callable[[Any], Any], payloads: Iterable[Any]) -> Iterator[tuple[Any, Any]]:
        """Yield ``(payload, result)`` as cells complete, each run by :func:`run_claimed`.

        In this process (one job or payload), a ``StoreError`` is the result; in the pool, the
        exception of a worker that died is.

        Args:
            fn: the picklable cell function.
            payloads: one payload per cell.

        Returns:
            An iterator of ``(payload, result)``.
        """
        payloads = list(payloads)
        if self.jobs == 1 or len(payloads) <= 1:
            for payload in payloads:
                try:
                    result = run_claimed(fn, payload)
                except folders.StoreError as exc:  # the folder is another writer's, or not ours
                    result = exc  # as from a worker: the driver records it, writing nothing
                yield payload, result
            return
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            max_workers=self.jobs,
            mp_context=context,
            initializer=die_with_parent,
            initargs=(os.getpid(),),
        ) as pool:
            futures = {pool.submit(run_claimed, fn, payload): payload for payload in payloads}
            for future in as_completed(futures):
                try:
                    yield futures[future], future.result()
                except Exception as exc:  # noqa: BLE001 (a dead worker fails its cell only)
                    yield futures[future], exc


def _claim(payload: Any) -> Any:
    import contextlib

    if isinstance(payload, dict) and payload.get("folder"):
        return folders.claim_run_dir(Path(payload["folder"]), command="isoeps worker")
    return contextlib.nullcontext()


def run_claimed(fn: Callable[[Any], Any], payload: Any) -> Any:
    """Run ``fn(payload)`` in a worker, holding the payload's run folder lock meanwhile.

    Args:
        fn: the cell function.
        payload: its argument; a dict with a ``folder`` has that folder claimed.

    Returns:
        What ``fn`` returns.

    Raises:
        StoreError: the folder is not isoeps's, or another process is writing it.
    """
    with _claim(payload):
        return fn(payload)


def die_with_parent(parent_pid: int) -> None:
    """Worker initializer: end this process when ``parent_pid`` (the driver) dies."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            import signal

            libc = ctypes.CDLL(None, use_errno=True)
            pr_set_pdeathsig = 1
            libc.prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):  # no prctl: the watchdog below still works
            pass
    if os.getppid() != parent_pid:  # the driver died before we got here
        os._exit(1)
    threading.Thread(
        target=_watch_parent, args=(parent_pid,), name="isoeps-watchdog", daemon=True
    ).start()


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(WATCHDOG_INTERVAL_S)
    os._exit(1)
