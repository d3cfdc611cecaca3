"""The local executor: cells in sequence, or in ``jobs`` worker processes on this machine."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from isoeps.bench.executors.options import check_options


class LocalExecutor:
    """``jobs == 1`` runs in this process; more uses a spawn-based process pool (torch and
    fork do not mix). ``map`` yields ``(payload, result)`` pairs as cells complete; ``result``
    is the exception when the worker itself died (the driver records the cell as failed)."""

    name = "local"

    def __init__(self, *, jobs: int = 1, resources: Any = None, **unknown: Any) -> None:
        # resources concern remote schedulers: on one machine the cells share what it has
        check_options("local", unknown, known=(), jobs=jobs)
        self.jobs = jobs

    def map(self, fn: Callable[[Any], Any], payloads: Iterable[Any]) -> Iterator[tuple[Any, Any]]:
        payloads = list(payloads)
        if self.jobs == 1 or len(payloads) <= 1:
            for payload in payloads:
                yield payload, fn(payload)
            return
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=self.jobs, mp_context=context) as pool:
            futures = {pool.submit(fn, payload): payload for payload in payloads}
            for future in as_completed(futures):
                try:
                    yield futures[future], future.result()
                except Exception as exc:  # noqa: BLE001 (a dead worker fails its cell only)
                    yield futures[future], exc
